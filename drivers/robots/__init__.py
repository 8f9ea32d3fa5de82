"""Robots and teleoperators (SO-100/SO-101, Koch) built on the motor buses."""
