"""The simulated SO-101: a MuJoCo world whose joints are driven through emulated Feetech buses."""
