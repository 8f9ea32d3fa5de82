"""The job launcher's errors: each carries one actionable line (what went wrong, what to do)."""

from __future__ import annotations


class JobError(Exception):
    """Anything the launcher cannot do; `str()` is the message to show the user."""


class RegistryError(JobError):
    """The job registry file cannot be read or written."""


class SshError(JobError):
    """`ssh` or `rsync` failed. `retryable` is True when the host may answer on a later try (network)."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
