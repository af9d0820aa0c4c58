"""How long and how hard `make bench` measures; BENCH_QUICK=1 for a short run."""

from __future__ import annotations

from dataclasses import dataclass

from common.settings import env_int


@dataclass(frozen=True)
class BenchSettings:
    quick: bool
    rounds: int  # A/B alternations for every ratio; the median ratio is quoted
    duration_s: float  # measuring window of one throughput run
    warmup_s: float
    concurrency: int  # connections of the load generator
    processes: int  # load-generator processes (the GIL would cap one)
    visibility_samples: int  # writes timed at light load
    loaded_s: float  # seconds of timed writes under 50 % load
    drain_messages: int  # writes queued behind a paused link
    latency_samples: int  # sequential requests per block for the added-latency figure
    strategy_rounds: int  # bursts per routing strategy

    @classmethod
    def from_env(cls) -> BenchSettings:
        if env_int("BENCH_QUICK", 0):
            return cls(quick=True, rounds=2, duration_s=2.0, warmup_s=0.5, concurrency=16,
                       processes=2, visibility_samples=60, loaded_s=4.0, drain_messages=2000,
                       latency_samples=100, strategy_rounds=1)
        return cls(quick=False, rounds=5, duration_s=3.0, warmup_s=1.0, concurrency=16,
                   processes=2, visibility_samples=300, loaded_s=10.0, drain_messages=10_000,
                   latency_samples=300, strategy_rounds=2)
