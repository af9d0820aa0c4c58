"""The rush hour's timeline as plain arithmetic (no Locust import, so tests can use it freely).

Phase lengths are fractions of the total run time, so a 10 s smoke run and a 1 h soak have the
same shape; the ramp and the decline are linear between the quiet level and the peak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PHASES: tuple[tuple[str, float], ...] = (
    ("quiet", 0.15), ("ramp", 0.25), ("peak", 0.30), ("decline", 0.30),
)
OVERLOAD = 1.5  # demanded power at the peak / total capacity: refusals must happen
QUIET_FRACTION = 0.1  # users in the quiet phase, as a fraction of the peak
DEFAULT_EV_SHARE = 0.8  # EVDriver weight 4 : KVClient weight 1


def auto_peak_users(capacity_kw: float, mean_kw: float, ev_share: float = DEFAULT_EV_SHARE,
                    overload: float = OVERLOAD) -> int:
    """Users at the peak so that the EV drivers among them demand `overload` x capacity."""
    if capacity_kw <= 0 or mean_kw <= 0 or not 0 < ev_share <= 1:
        raise ValueError("capacity, mean power and EV share must be positive")
    ev_users = math.ceil(overload * capacity_kw / mean_kw)
    return math.ceil(ev_users / ev_share)


@dataclass(frozen=True)
class RushHourPlan:
    """Target user count at each moment of a rush hour of `total_s` seconds."""

    total_s: float
    peak_users: int
    quiet_users: int

    @classmethod
    def build(cls, total_s: float, peak_users: int) -> RushHourPlan:
        if total_s <= 0:
            raise ValueError("run time must be positive")
        if peak_users < 1:
            raise ValueError("peak users must be at least 1")
        quiet = min(peak_users, max(2, round(peak_users * QUIET_FRACTION)))
        return cls(total_s, peak_users, quiet)

    def boundaries(self) -> list[tuple[str, float, float]]:
        """(phase, start_s, end_s) for every phase, end of the last one == total_s."""
        out, start = [], 0.0
        for name, fraction in PHASES:
            end = start + fraction * self.total_s
            out.append((name, start, end))
            start = end
        out[-1] = (out[-1][0], out[-1][1], self.total_s)
        return out

    def phase_at(self, t: float) -> str | None:
        """Name of the phase at `t` seconds, None once the rush hour is over."""
        for name, start, end in self.boundaries():
            if start <= t < end:
                return name
        return None

    def users_at(self, t: float) -> int | None:
        """Target users at `t`: flat, linear up, flat at the peak, linear down; None when over."""
        for name, start, end in self.boundaries():
            if not start <= t < end:
                continue
            progress = (t - start) / (end - start)
            span = self.peak_users - self.quiet_users
            if name == "quiet":
                return self.quiet_users
            if name == "ramp":
                return self.quiet_users + math.ceil(span * progress)
            if name == "peak":
                return self.peak_users
            return self.peak_users - math.floor(span * progress)
        return None

    @property
    def spawn_rate(self) -> float:
        """Users/s: twice the ramp's slope, so Locust keeps up with the moving target."""
        ramp_s = dict(PHASES)["ramp"] * self.total_s
        return max(1.0, 2.0 * (self.peak_users - self.quiet_users) / ramp_s)
