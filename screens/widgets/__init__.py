"""Widgets the workflow screens share: camera preview, log pane."""
