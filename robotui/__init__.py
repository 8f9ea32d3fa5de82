"""robotui: the terminal cockpit for robot learning on a real arm (app shell, CLI, widgets)."""

__version__ = "0.1.0"
