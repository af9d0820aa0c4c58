"""RushHourShape: quiet, morning ramp, a peak that asks for more power than the grid has, decline.

Phase lengths are fractions of the run time (Locust's --run-time, else RUN_TIME), so a 10 s smoke
run and a 1 h soak have the same shape. The peak user count is --users when given (> 1), else
PEAK_USERS, else enough EV drivers that their demand is OVERLOAD x the total grid capacity
(see plan.py for the phase arithmetic).
"""

from __future__ import annotations

from locust import LoadTestShape

if __package__:
    from . import config
    from .plan import DEFAULT_EV_SHARE, RushHourPlan, auto_peak_users
else:  # loaded as a top-level module next to the locustfile (compose: /mnt/locust)
    import config
    from plan import DEFAULT_EV_SHARE, RushHourPlan, auto_peak_users


class RushHourShape(LoadTestShape):
    """Quiet, morning ramp, peak above total grid capacity, decline (see module docstring)."""

    use_common_options = True  # the web UI shows users / run time; we read them below

    def __init__(self) -> None:
        super().__init__()
        self._plan: RushHourPlan | None = None

    def reset_time(self) -> None:
        super().reset_time()
        self._plan = None  # a new run from the web UI may come with new options

    def plan(self) -> RushHourPlan:
        if self._plan is None:
            options = getattr(getattr(self.runner, "environment", None), "parsed_options", None)
            total_s = config.run_time_s(getattr(options, "run_time", None))
            peak = getattr(options, "num_users", None) or 0
            if peak <= 1:  # Locust fills in 1 when -u is absent
                peak = config.peak_users_override() or auto_peak_users(
                    config.grid_capacity_kw(), config.mean_power_kw(), self._ev_share())
            self._plan = RushHourPlan.build(total_s, peak)
        return self._plan

    def _ev_share(self) -> float:
        classes = list(getattr(self.runner, "user_classes", None) or [])
        total = sum(getattr(cls, "weight", 1) for cls in classes)
        ev = sum(getattr(cls, "weight", 1) for cls in classes if getattr(cls, "draws_power", False))
        return ev / total if total and ev else DEFAULT_EV_SHARE

    def tick(self) -> tuple[int, float] | None:
        plan = self.plan()
        users = plan.users_at(self.get_run_time())
        return None if users is None else (users, plan.spawn_rate)
