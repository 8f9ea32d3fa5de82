"""Wire-level servo emulator on pseudo-terminals (Feetech protocol 0/1, Dynamixel protocol 2.0)."""
