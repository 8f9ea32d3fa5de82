"""One module per workflow screen: home, ports, calibrate, teleop, record, rollout, train."""
