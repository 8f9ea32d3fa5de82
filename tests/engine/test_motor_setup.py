"""Motor setup on the emulator: factory-fresh motors are plugged in one at a time (`add_motor`), set up, and
unplugged (`remove_motor`), the way a user walks down the chain."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.emulator import EmulatedBus
from drivers.motors import CommError, MotorBus, MultipleMotorsError, NoMotorFoundError
from drivers.robots import safety
from drivers.robots.so import SOFollower, SOFollowerConfig
from engine.motor_setup import MotorSetupError, MotorSetupProcedure, SetupResult, _reason


@pytest.fixture(autouse=True)
def _release_everything() -> Iterator[None]:
    yield
    safety.release_all("test teardown")
    safety.uninstall_signal_handlers()


@pytest.fixture(autouse=True)
def _short_broadcast_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """The emulator answers a broadcast at once and no motor here has an id above 20: wait for 20 id slots
    instead of all 252 (~0.8-1.6 s per baud rate, ~8 s for a search over every rate)."""
    monkeypatch.setattr(MotorBus, "broadcast_max_id", 20)


@pytest.fixture
def empty_bus(tmp_path: Path) -> Iterator[EmulatedBus]:
    with EmulatedBus("feetech", {}, name="setup", port_dir=tmp_path) as emu:
        yield emu


@pytest.fixture
def setup(empty_bus: EmulatedBus) -> Iterator[MotorSetupProcedure]:
    with MotorSetupProcedure(SOFollower(SOFollowerConfig(port=empty_bus.port, id="new"))) as proc:
        yield proc


def test_walks_the_chain_gripper_first(empty_bus: EmulatedBus, setup: MotorSetupProcedure) -> None:
    assert [s.motor for s in setup.steps] == ["gripper", "wrist_roll", "wrist_flex", "elbow_flex", "shoulder_lift",
                                              "shoulder_pan"]
    assert "'gripper'" in setup.steps[0].prompt and "id 6" in setup.steps[0].prompt
    while not setup.done:
        step = setup.current
        assert step is not None
        empty_bus.add_motor(1, "sts3215")  # every new motor ships as id 1
        result = setup.setup_current()
        assert result == SetupResult(step.motor, 1_000_000, 1, step.id, 1_000_000)
        assert empty_bus.servos.keys() == {step.id}
        servo = empty_bus.remove_motor(step.id)
        assert servo.baudrate == 1_000_000 and servo.read_register("ID") == step.id
    assert set(setup.results) == {s.motor for s in setup.steps}
    assert setup.results["shoulder_pan"].describe() == "'shoulder_pan': already id 1 at 1 Mbps, nothing to change"
    assert setup.results["gripper"].describe() == "'gripper': found at 1000000 baud with id 1 -> set to id 6 at 1 Mbps"
    assert not setup.results["shoulder_pan"].changed and setup.results["gripper"].changed
    with pytest.raises(MotorSetupError, match="all motors are set up"):
        setup.setup_current()


def test_motor_at_another_baud_rate_and_id(empty_bus: EmulatedBus, setup: MotorSetupProcedure) -> None:
    servo = empty_bus.add_motor(9, "sts3215", baudrate=500_000)
    result = setup.setup_current()
    assert (result.found_baudrate, result.found_id, result.new_id, result.new_baudrate) == (500_000, 9, 6, 1_000_000)
    assert "found at 500000 baud with id 9 -> set to id 6 at 1 Mbps" in result.describe()
    assert servo.id == 6 and servo.baudrate == 1_000_000
    # The new settings are persisted (written with the EEPROM unlocked): they survive a power cycle.
    empty_bus.power_cycle()
    assert servo.id == 6 and servo.baudrate == 1_000_000
    assert setup.current is not None and setup.current.motor == "wrist_roll"


def test_no_motor_connected(setup: MotorSetupProcedure) -> None:
    with pytest.raises(MotorSetupError) as info:
        setup.setup_current()
    assert info.value.reason == "no_motor" and info.value.motor == "gripper"
    assert isinstance(info.value.__cause__, NoMotorFoundError)
    assert "No motor answered" in str(info.value) and "power" in str(info.value)
    assert setup.current is not None and setup.current.motor == "gripper"  # not advanced: retry after fixing


def test_two_motors_connected(empty_bus: EmulatedBus, setup: MotorSetupProcedure) -> None:
    empty_bus.add_motor(1, "sts3215")
    empty_bus.add_motor(2, "sts3215")
    with pytest.raises(MotorSetupError) as info:
        setup.setup_current()
    assert info.value.reason == "several_motors" and isinstance(info.value.__cause__, MultipleMotorsError)
    assert "More than one motor" in str(info.value) and "'gripper'" in str(info.value)
    assert set(empty_bus.servos) == {1, 2}  # nothing was renamed
    empty_bus.remove_motor(2)
    assert setup.setup_current().new_id == 6  # after unplugging one, it works


def test_only_the_search_errors_map_to_their_pictures() -> None:
    # A reply lost after the motor was found is not "no motor connected": the message says what to do.
    assert _reason(CommError("'gripper' did not answer at id 6 after setting its id")) == "other"
    assert _reason(NoMotorFoundError("No motor answered", [1_000_000])) == "no_motor"


def test_wrong_model(empty_bus: EmulatedBus, setup: MotorSetupProcedure) -> None:
    empty_bus.add_motor(1, "sts3250")
    with pytest.raises(MotorSetupError) as info:
        setup.setup_current()
    assert info.value.reason == "wrong_model" and "sts3215" in str(info.value)
    assert set(empty_bus.servos) == {1}


def test_go_to_and_skip(setup: MotorSetupProcedure) -> None:
    assert setup.go_to("elbow_flex").id == 3
    setup.skip()
    assert setup.current is not None and setup.current.motor == "shoulder_lift"
    with pytest.raises(KeyError, match="elbow_roll"):
        setup.go_to("elbow_roll")
