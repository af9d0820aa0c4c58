"""Locust users: EV drivers charging through the balancer, and causal KV sessions across nodes.

A 503 + Retry-After from POST /charge is the grid saying "full" (driving.is_grid_refusal): it
is counted as a success under its own name (config.REFUSED_NAME) by renaming the request inside
`catch_response`, so the statistics show admissions, refusals and real failures apart, and
Locust's failure ratio / exit code only count the latter. Anything else unexpected is a failure.
Some drivers insist on full power (`allow_reduced: false`, the old rule), some ask to wait
(`wait: true`): a 202 is counted as config.QUEUED_NAME, the poll that sees the car charging as
config.FROM_QUEUE_NAME, so the report tells cars charged, queued and turned away.
"""

from __future__ import annotations

import itertools
import json
import random
import time
import uuid
from typing import ClassVar

from locust import HttpUser, between, task

if __package__:
    from . import config
    from .clocks import clock_below, merge_clock
    from .driving import is_grid_refusal, pick_power_kw, session_duration_s
else:  # loaded as a top-level module next to the locustfile (compose: /mnt/locust)
    import config
    from clocks import clock_below, merge_clock
    from driving import is_grid_refusal, pick_power_kw, session_duration_s

EARLY_UNPLUG_P = 0.3  # drivers who leave before their session ends
FULL_POWER_P = 0.3  # drivers who take full power or nothing (allow_reduced: false)
WAIT_P = 0.3  # drivers who queue when the grid is full ("wait": true)
QUEUE_PATIENCE_S = 20.0  # a waiting driver gives up (DELETE) after this long
UNPLUG_MARGIN_S = 0.5  # don't race the substation's own expiry with a DELETE
_vehicle_numbers = itertools.count(1)


def _json(resp) -> dict | None:
    try:
        body = resp.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


class EVDriver(HttpUser):
    """Plugs in through the balancer, charges, sometimes unplugs early, checks /status now and then.

    Host: the balancer (BALANCER_URL, or --host / the web UI's host field).
    """

    weight = 4
    draws_power: ClassVar[bool] = True  # RushHourShape sizes the peak from these users
    wait_time = between(0.5, 2.0)
    host = config.balancer_url()

    def on_start(self) -> None:
        self.vehicle_id = f"EV-{next(_vehicle_numbers)}-{uuid.uuid4().hex[:6]}"
        self.session_id: str | None = None
        self.queued_id: str | None = None
        self.ends_at = self.unplug_at = self.queued_at = self.duration = 0.0
        options = getattr(self.environment, "parsed_options", None)
        self.run_time_s = config.run_time_s(getattr(options, "run_time", None))

    @task(8)
    def drive(self) -> None:
        now = time.monotonic()
        if self.queued_id is not None:
            self.check_queue(now)
        elif self.session_id is None or now >= self.ends_at:
            self.session_id = None  # charged (the substation ended it) or never plugged in
            self.plug_in()
        elif now >= self.unplug_at and self.ends_at - now > UNPLUG_MARGIN_S:
            self.unplug()

    @task(1)
    def check_status(self) -> None:
        with self.client.get("/status", name="/status [balancer]", catch_response=True) as resp:
            body = _json(resp) if resp.status_code == 200 else None
            if body is None or not isinstance(body.get("substations"), list):
                resp.failure(f"GET /status: {resp.status_code} {resp.text[:200]}")

    def plug_in(self) -> None:
        power = pick_power_kw()
        duration = session_duration_s(self.run_time_s)
        payload = {"vehicle_id": self.vehicle_id, "power_kw": power, "duration_s": duration}
        if random.random() < FULL_POWER_P:
            payload["allow_reduced"] = False
        if random.random() < WAIT_P:
            payload["wait"] = True
        with self.client.post("/charge", json=payload, name="/charge", catch_response=True) as resp:
            body = _json(resp)
            if resp.status_code == 202 and body and body.get("state") == "queued":
                resp.request_meta["name"] = config.QUEUED_NAME
                resp.success()
                self.queued_id, self.queued_at = str(body["session_id"]), time.monotonic()
                self.duration = duration
                return
            if is_grid_refusal(resp.status_code, resp.headers.get("Retry-After"), body):
                resp.request_meta["name"] = config.REFUSED_NAME  # the grid working, not a fault
                resp.success()
                return
            body = body if resp.status_code == 200 else None
            if body is None or not body.get("session_id"):
                resp.failure(f"POST /charge: {resp.status_code} {resp.text[:200]}")
                return
            load, capacity = body.get("load_kw"), body.get("capacity_kw")
            if isinstance(load, int | float) and isinstance(capacity, int | float) \
                    and load > capacity + 1e-6:
                resp.failure(f"{body.get('substation')} above capacity: {load} > {capacity} kW")
                return
        now = time.monotonic()
        self.session_id = str(body["session_id"])
        self.ends_at = now + duration
        early = random.random() < EARLY_UNPLUG_P
        self.unplug_at = now + duration * random.uniform(0.2, 0.8) if early else self.ends_at

    def check_queue(self, now: float) -> None:
        """A waiting car: charging yet? Gives up after QUEUE_PATIENCE_S."""
        queued_id = self.queued_id
        with self.client.get(f"/sessions/{queued_id}", name="/sessions/[queued]",
                             catch_response=True) as resp:
            body = _json(resp) if resp.status_code == 200 else None
            if body is None or body.get("state") not in ("queued", "charging", "ended"):
                resp.failure(f"GET /sessions/<queued>: {resp.status_code} {resp.text[:200]}")
                return
            if body["state"] == "charging":
                resp.request_meta["name"] = config.FROM_QUEUE_NAME
                self.queued_id, self.session_id = None, queued_id  # DELETE by it reaches it
                self.ends_at = self.unplug_at = now + self.duration
                return
            if body["state"] == "ended":  # admitted and already over
                self.queued_id = None
                return
        if now - self.queued_at > QUEUE_PATIENCE_S:
            self.cancel_wait()

    def cancel_wait(self) -> None:
        queued_id, self.queued_id = self.queued_id, None
        with self.client.delete(f"/sessions/{queued_id}", name=config.CANCELLED_NAME,
                                catch_response=True) as resp:
            if resp.status_code not in (200, 404):  # 404: admitted and over meanwhile
                resp.failure(f"DELETE /sessions/<queued>: {resp.status_code}")

    def on_stop(self) -> None:
        if self.queued_id is not None:  # leave no car waiting after the run
            self.cancel_wait()

    def unplug(self) -> None:
        session_id, self.session_id = self.session_id, None
        with self.client.delete(f"/sessions/{session_id}", name="/sessions/[id]",
                                catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(f"DELETE /sessions: {resp.status_code} {resp.text[:200]}")


class KVClient(HttpUser):
    """One causal session across random nodes: every call carries the clock observed so far.

    Keys are private to the session, so a read must return exactly the last value written;
    a response whose clock is below the session's context is a causality failure.
    """

    weight = 1
    wait_time = between(0.3, 1.0)
    host = config.node_urls()[0]  # requests use absolute URLs of NODE_URLS, whatever --host says

    def on_start(self) -> None:
        self.nodes = config.node_urls()
        self.causal = [0] * len(self.nodes)  # (not `context`: User.context() exists)
        self.prefix = f"lt-{uuid.uuid4().hex[:10]}"
        self.written: dict[str, object] = {}
        self.writes = 0

    def _check(self, resp, what: str) -> dict | None:
        """The JSON body when the response respects the session's causal context, else None."""
        body = _json(resp) if resp.status_code == 200 else None
        if body is None:
            resp.failure(f"{what}: {resp.status_code} {resp.text[:200]}")
            return None
        clock = body.get("vector_clock")
        if clock_below(clock, self.causal):
            resp.failure(f"{what}: clock {clock} below context {self.causal}")
            return None
        self.causal = merge_clock(self.causal, clock)
        return body

    @task(2)
    def put(self) -> None:
        key = f"{self.prefix}-{random.randrange(4)}"
        self.writes += 1
        value = {"n": self.writes, "session": self.prefix}
        node = random.choice(self.nodes)
        with self.client.put(f"{node}/kv/{key}", json={"value": value, "context": self.causal},
                             name="/kv/[key]", catch_response=True) as resp:
            if self._check(resp, "PUT /kv") is not None:
                self.written[key] = value

    @task(3)
    def get(self) -> None:
        if not self.written:
            self.put()
            return
        key, expected = random.choice(list(self.written.items()))
        node = random.choice(self.nodes)
        context = ",".join(map(str, self.causal))
        with self.client.get(f"{node}/kv/{key}", params={"context": context}, name="/kv/[key]",
                             catch_response=True) as resp:
            body = self._check(resp, "GET /kv")
            if body is not None and body.get("value") != expected:
                resp.failure(f"read-your-writes: got {json.dumps(body.get('value'))[:100]}, "
                             f"wrote {json.dumps(expected)}")
