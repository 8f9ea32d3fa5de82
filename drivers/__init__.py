"""Hardware and its stand-ins: motor buses, the servo emulator, robots, cameras, the MuJoCo sim world."""
