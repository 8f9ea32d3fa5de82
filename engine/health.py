"""The wire's health across the arms of a workflow: what the retries absorbed, for the operator to see.

A noisy cable shows up here long before it stops a run: lost and corrupted servo replies are retried (and a
tick whose reads still failed is skipped), so these counters are the early warning.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.robots.base import Arm


@dataclass(frozen=True)
class BusHealth:
    retries: int = 0
    timeouts: int = 0
    corrupt: int = 0
    failures: int = 0  # operations that still failed after their retries (ticks skipped)

    @property
    def clean(self) -> bool:
        return not (self.retries or self.timeouts or self.corrupt or self.failures)

    def line(self) -> str:
        return (f"{self.retries} retries · {self.timeouts} timeouts · {self.corrupt} corrupt replies · "
                f"{self.failures} failed reads")


def bus_health(*arms: Arm | None) -> BusHealth:
    """Summed counters of the given arms' buses (None entries, e.g. keyboard teleop, are skipped)."""
    stats = [arm.bus.stats for arm in arms if arm is not None]
    return BusHealth(
        retries=sum(s.retries for s in stats),
        timeouts=sum(s.timeouts for s in stats),
        corrupt=sum(s.corrupt for s in stats),
        failures=sum(s.failures for s in stats),
    )
