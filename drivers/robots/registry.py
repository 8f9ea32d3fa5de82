"""Build robots and teleoperators from LeRobot's CLI type names (`so101_follower`, `koch_leader`...).

Every type is listed here explicitly (no import-time registration), so a typo can always be answered with
the full list and the closest match, instead of the `KeyError` LeRobot users hit when a module was not
imported (workflows §7.2).
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

from drivers.robots.base import ArmConfig, Robot, RobotConfig, Teleoperator, TeleoperatorConfig
from drivers.robots.koch import KochFollower, KochFollowerConfig, KochLeader, KochLeaderConfig
from drivers.robots.so import SOFollower, SOFollowerConfig, SOLeader, SOLeaderConfig

ROBOT_TYPES: dict[str, tuple[type[Robot], type[RobotConfig]]] = {
    "so_follower": (SOFollower, SOFollowerConfig),
    "so100_follower": (SOFollower, SOFollowerConfig),
    "so101_follower": (SOFollower, SOFollowerConfig),
    "koch_follower": (KochFollower, KochFollowerConfig),
}

TELEOPERATOR_TYPES: dict[str, tuple[type[Teleoperator], type[TeleoperatorConfig]]] = {
    "so_leader": (SOLeader, SOLeaderConfig),
    "so100_leader": (SOLeader, SOLeaderConfig),
    "so101_leader": (SOLeader, SOLeaderConfig),
    "koch_leader": (KochLeader, KochLeaderConfig),
}


class UnknownTypeError(ValueError):
    """A robot/teleoperator type or config field that does not exist; the message lists the valid ones."""


def _unknown(what: str, name: str, valid: list[str]) -> UnknownTypeError:
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
    suggestion = f" Did you mean '{close[0]}'?" if close else ""
    return UnknownTypeError(f"unknown {what} '{name}'.{suggestion} Valid: {', '.join(valid)}")


def _build_config(kind: str, type: str, config_cls: type[ArmConfig], fields: dict[str, Any]) -> Any:
    names = [f.name for f in dataclasses.fields(config_cls) if f.name != "type"]
    for key in fields:
        if key not in names:
            raise _unknown(f"{kind} option for {type}", key, names)
    return config_cls(type=type, **fields)


def make_robot_config(type: str, **fields: Any) -> RobotConfig:
    if type in TELEOPERATOR_TYPES:
        raise UnknownTypeError(f"'{type}' is a teleoperator (leader arm), not a robot; robots: "
                               + ", ".join(sorted(ROBOT_TYPES)))
    if type not in ROBOT_TYPES:
        raise _unknown("robot type", type, sorted(ROBOT_TYPES))
    return _build_config("robot", type, ROBOT_TYPES[type][1], fields)


def make_teleoperator_config(type: str, **fields: Any) -> TeleoperatorConfig:
    if type in ROBOT_TYPES:
        raise UnknownTypeError(f"'{type}' is a robot (follower arm), not a teleoperator; teleoperators: "
                               + ", ".join(sorted(TELEOPERATOR_TYPES)))
    if type not in TELEOPERATOR_TYPES:
        raise _unknown("teleoperator type", type, sorted(TELEOPERATOR_TYPES))
    return _build_config("teleoperator", type, TELEOPERATOR_TYPES[type][1], fields)


def make_robot(type: str | RobotConfig, **fields: Any) -> Robot:
    """`make_robot("so101_follower", port="/dev/ttyACM0", id="arm")`, or from a config object."""
    config = type if isinstance(type, RobotConfig) else make_robot_config(type, **fields)
    if config.type not in ROBOT_TYPES:
        raise _unknown("robot type", config.type, sorted(ROBOT_TYPES))
    return ROBOT_TYPES[config.type][0](config)


def make_teleoperator(type: str | TeleoperatorConfig, **fields: Any) -> Teleoperator:
    config = type if isinstance(type, TeleoperatorConfig) else make_teleoperator_config(type, **fields)
    if config.type not in TELEOPERATOR_TYPES:
        raise _unknown("teleoperator type", config.type, sorted(TELEOPERATOR_TYPES))
    return TELEOPERATOR_TYPES[config.type][0](config)


def make_arm(type: str, **fields: Any) -> Robot | Teleoperator:
    """A follower or a leader, whichever `type` names (for commands that take either, like calibrate)."""
    if type in ROBOT_TYPES:
        return make_robot(type, **fields)
    if type in TELEOPERATOR_TYPES:
        return make_teleoperator(type, **fields)
    raise _unknown("robot or teleoperator type", type, sorted(ROBOT_TYPES) + sorted(TELEOPERATOR_TYPES))
