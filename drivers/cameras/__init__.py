"""Cameras behind one interface: a reader thread per camera keeps the newest frame."""
