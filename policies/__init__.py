"""Policies: the policy protocol, ACT, normalization, checkpoint I/O and the trainer."""
