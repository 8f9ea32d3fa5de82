"""The scripted demonstrator as a simulated human on the leader, teleoperating the follower in real time."""

from __future__ import annotations

import threading

from drivers.motors.feetech import FeetechBus
from drivers.robots.so import so_motors
from drivers.sim.virtual_robot import VirtualSO101


def test_scripted_leader_teleoperates_a_real_pick_and_place(virtual: VirtualSO101) -> None:
    """Leader bus -> follower bus at 30 Hz, like `robotui teleop`: the cube ends up placed in the zone."""
    leader = FeetechBus(virtual.leader_port, so_motors(), calibration=virtual.calibration("leader"))
    follower = FeetechBus(virtual.follower_port, so_motors(), calibration=virtual.calibration("follower"))
    leader.connect()
    follower.connect()
    stop = threading.Event()
    errors: list[BaseException] = []
    lifted = threading.Event()

    def teleop() -> None:
        try:
            follower.enable_torque()
            while not stop.wait(1 / 30):
                follower.sync_write("Goal_Position", leader.sync_read("Present_Position"))
                if virtual.runner.call(lambda w: w.cube_pose()[0][2]) > 0.04:
                    lifted.set()
        except BaseException as e:
            errors.append(e)

    loop = threading.Thread(target=teleop, daemon=True)
    loop.start()
    try:
        status = virtual.start_demo(loop=False)
        assert status.wait(timeout=60.0), "demonstration did not finish"
        assert status.status.episodes == 1
    finally:
        stop.set()
        loop.join(timeout=5.0)
        leader.disconnect()
        follower.disconnect()
    assert not errors, errors
    assert lifted.is_set(), "the follower never lifted the cube"
    assert virtual.is_success()
    assert status.status.successes == 1
