"""Robot profiles: TOML round trip, error messages that name file and line, CLI overrides, the sim profile."""

from __future__ import annotations

import argparse
import os
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from engine import profile as profiles
from engine.profile import (
    ArmConfig,
    Profile,
    ProfileError,
    ProfileStore,
    apply_overrides,
    default_profile,
    dump_toml,
    form_fields,
    load_profiles,
    profile_from_form,
    profile_to_form,
    profiles_path,
    save_profiles,
    sim_profile,
)


def _workshop() -> Profile:
    return Profile(
        name="workshop arm",  # not a bare TOML key
        robot=ArmConfig("koch_follower", "/dev/serial/by-id/usb-ROBOTIS_OpenRB-150-if00", "koch-1"),
        teleop=ArmConfig("keyboard"),
        cameras={
            "front": {"type": "opencv", "index_or_path": 0, "width": 640, "height": 480, "fps": 30},
            "top": {"type": "video", "path": "/data/clips/top view.mp4", "loop": True},
        },
        teleop_fps=50,
        record_fps=15,
        max_relative_target={"shoulder_pan": 5.0, "gripper": 12.5},
        dataset_root='~/datasets/"quoted"\\and\\backslashed é',
    )


def test_profiles_live_in_the_xdg_config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert profiles_path() == tmp_path / "cfg" / "robotui" / "profiles.toml"


def test_missing_file_gives_a_default_profile_and_writes_nothing() -> None:
    store = load_profiles()
    assert store.active == "default"
    assert store.active_profile == default_profile()
    assert not store.path.exists()


def test_round_trip_keeps_every_field() -> None:
    store = load_profiles()
    store.put(sim_profile(), activate=False)
    store.put(_workshop())
    store.save()
    loaded = load_profiles()
    assert loaded.active == "workshop arm"
    assert loaded.profiles == store.profiles
    assert loaded.profiles["sim"] == sim_profile()
    # what we wrote is plain TOML any reader understands, with our header comment on top
    text = store.path.read_text(encoding="utf-8")
    assert text.startswith("# robotui robot profiles.")
    assert tomllib.loads(text)["profiles"]["workshop arm"]["robot"]["type"] == "koch_follower"


def test_dump_toml_escapes_strings_and_keys() -> None:
    data = {
        "plain": "a",
        "tricky": 'quote " backslash \\ newline \n tab \t bell \x07 del \x7f unicode ✓',
        "numbers": [1, 2.5, -3, 1e-9, float("inf")],
        "flags": [True, False],
        "dotted.key": 1,
        "spaced key": {"inner": {"deep": "x"}, "value": 2},
        "inline": [],
    }
    assert tomllib.loads(dump_toml(data)) == data
    with pytest.raises(TypeError, match="cannot write"):
        dump_toml({"x": object()})


def test_save_is_atomic(monkeypatch: pytest.MonkeyPatch) -> None:
    store = load_profiles()
    store.save()
    before = store.path.read_text(encoding="utf-8")

    def failing_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    store.put(_workshop())
    with pytest.raises(OSError, match="disk full"):
        store.save()
    assert store.path.read_text(encoding="utf-8") == before  # the old file is untouched
    assert sorted(p.name for p in store.path.parent.iterdir()) == ["profiles.toml"]  # no temp file left


def test_malformed_toml_names_the_file_and_line() -> None:
    path = profiles_path()
    path.parent.mkdir(parents=True)
    path.write_text('active = "default"\n\n[profiles.default\nteleop_fps = 60\n', encoding="utf-8")
    with pytest.raises(ProfileError) as info:
        load_profiles()
    message = str(info.value)
    assert message.startswith(f"{path}, line 3: invalid TOML: ")
    assert info.value.line == 3
    assert info.value.path == path


def test_a_wrong_value_names_the_file_line_and_choices() -> None:
    path = profiles_path()
    path.parent.mkdir(parents=True)
    path.write_text(
        "\n".join(
            [
                'active = "lab"',
                "[profiles.lab]",
                "record_fps = 30",
                "[profiles.lab.robot]",
                'port = "/dev/ttyACM0"',
                'type = "so102_follower"',
                'id = "arm"',
                "[profiles.lab.teleop]",
                'type = "keyboard"',
            ]
        ),
        encoding="utf-8",
    )
    with pytest.raises(ProfileError) as info:
        load_profiles()
    message = str(info.value)
    assert message.startswith(f"{path}, line 6: profile 'lab': robot.type 'so102_follower' is not known")
    assert "so101_follower" in message  # the valid choices are listed
    assert info.value.field == "robot.type"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            '[profiles.a]\nteleop_fps = 0\n[profiles.a.robot]\ntype = "so101_follower"\nid = "x"\n'
            '[profiles.a.teleop]\ntype = "keyboard"',
            "line 2: profile 'a': teleop_fps must be a whole number",
        ),
        ('[profiles.a]\ncolour = "red"\n', "profile 'a': unknown key(s) colour"),
        (
            'active = "b"\n[profiles.a.robot]\ntype = "so101_follower"\nid = "x"\n[profiles.a.teleop]\ntype = "keyboard"',
            "line 1: active = 'b' but there is no [profiles.b]",
        ),
        (
            '[profiles.a.robot]\ntype = "so101_follower"\nid = "has space"\n[profiles.a.teleop]\ntype = "keyboard"',
            "line 3: profile 'a': robot.id 'has space' must be a non-empty name",
        ),
        (
            '[profiles.a.robot]\ntype = "so101_follower"\nid = "x"\n[profiles.a.teleop]\ntype = "keyboard"\n'
            '[profiles.a.cameras.front]\ntype = "opencv"\nwidht = 640',
            "camera 'front': ",
        ),
        ("x = 1\n", "no [profiles.<name>] table"),
    ],
)
def test_schema_errors(body: str, expected: str) -> None:
    path = profiles_path()
    path.parent.mkdir(parents=True)
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ProfileError, match="^" + str(path).replace(".", r"\.")) as info:
        load_profiles()
    assert expected in str(info.value)


def test_sim_profile() -> None:
    sim = sim_profile()
    assert sim.sim
    assert (sim.robot.type, sim.robot.id) == ("so101_follower", "sim_follower")
    assert (sim.teleop.type, sim.teleop.id) == ("so101_leader", "sim_leader")
    assert set(sim.cameras) == {"front", "wrist"}
    assert all(c["type"] == "sim" for c in sim.cameras.values())
    assert (sim.teleop_fps, sim.record_fps) == (60, 30)
    assert sim.robot.calibration_key == ("robots", "so_follower")
    assert sim.teleop.calibration_key == ("teleoperators", "so_leader")
    assert profiles.validate(sim) is sim


def test_overrides_apply_on_top_and_never_touch_the_file() -> None:
    args = argparse.Namespace(
        sim=False,
        robot_port="/dev/ttyUSB3",
        robot_id=None,
        teleop_type="keyboard",
        record_fps=10,
        max_relative_target="8",
        cameras='{"wrist": {"type": "opencv", "index_or_path": "/dev/video2"}}',
        dataset_root="/data/sets",
    )
    base = default_profile()
    result = apply_overrides(base, args)
    assert result.robot == ArmConfig("so101_follower", "/dev/ttyUSB3", "follower")
    assert result.teleop.type == "keyboard"
    assert result.record_fps == 10 and result.teleop_fps == base.teleop_fps
    assert result.max_relative_target == 8.0
    assert result.cameras == {"wrist": {"type": "opencv", "index_or_path": "/dev/video2"}}
    assert result.dataset_root_path() == Path("/data/sets")
    assert not profiles_path().exists()
    # flags that are absent or None change nothing
    assert apply_overrides(base, argparse.Namespace(sim=False, verbose=True)) == base
    assert apply_overrides(
        base, argparse.Namespace(max_relative_target='{"gripper": 5}')
    ).max_relative_target == {"gripper": 5.0}


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"record_fps": 0}, "command-line override: record_fps must be a whole number"),
        (
            {"max_relative_target": "-1"},
            "command-line override: max_relative_target must be a positive number",
        ),
        ({"max_relative_target": "fast"}, "max_relative_target: 'fast' is neither a number nor JSON"),
        ({"robot_type": "so101_leader"}, "robot.type 'so101_leader' is not known"),
        ({"cameras": "[1, 2]"}, "cameras must be a JSON object"),
    ],
)
def test_bad_overrides_say_which_flag(flags: dict[str, object], message: str) -> None:
    with pytest.raises(ProfileError) as info:
        apply_overrides(default_profile(), argparse.Namespace(**flags))
    assert message in str(info.value)


def test_dataset_root_defaults_to_lerobot_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_LEROBOT_HOME", str(tmp_path / "lr"))
    assert default_profile().dataset_root_path() == tmp_path / "lr"
    monkeypatch.delenv("HF_LEROBOT_HOME")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert default_profile().dataset_root_path() == tmp_path / "hf" / "lerobot"


def test_form_round_trip_and_field_errors() -> None:
    workshop = _workshop()
    values = profile_to_form(workshop)
    assert set(values) == {f.key for f in form_fields()}
    assert profile_from_form(workshop, values) == workshop
    values["teleop_fps"] = "fast"
    with pytest.raises(ProfileError) as info:
        profile_from_form(workshop, values)
    assert info.value.field == "teleop_fps"
    values = profile_to_form(workshop) | {"cameras": '{"front": {"type": "opencv"}}'}
    with pytest.raises(ProfileError) as info:
        profile_from_form(workshop, values)
    assert info.value.field == "cameras" and "index_or_path" in str(info.value)
    values = profile_to_form(workshop) | {"max_relative_target": "", "cameras": "", "dataset_root": " "}
    cleared = profile_from_form(workshop, values)
    assert (cleared.max_relative_target, cleared.cameras, cleared.dataset_root) == (None, {}, None)


def test_store_refuses_an_active_profile_it_does_not_have(tmp_path: Path) -> None:
    store = ProfileStore({"a": replace(default_profile(), name="a")}, "b", tmp_path / "p.toml")
    with pytest.raises(ProfileError, match="active profile 'b'"):
        save_profiles(store)
