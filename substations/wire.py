"""What substations and the balancer agree on over HTTP: session ids, times, refusal marker."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,48}$")
SESSION_ID_RE = re.compile(r"^([A-Za-z0-9_-]{1,48})\.[0-9a-f]{16}$")

# The balancer names its least-utilization reservation ("<16 hex>:<watts>") in this header;
# the substation's admission removes it atomically (see lua/admit.lua).
RESERVATION_HEADER = "X-Grid-Reservation"
RESERVATION_RE = re.compile(r"^[0-9a-f]{16}:[0-9]{1,10}$")

# Redis-clock epoch ms after which the caller no longer waits for this admission.
DEADLINE_HEADER = "X-Grid-Deadline"
DEADLINE_RE = re.compile(r"^[0-9]{1,15}$")


def deadline_from(header: str | None) -> int:
    """The deadline named by a request header, or 0 (none) when absent or malformed."""
    return int(header) if header and DEADLINE_RE.match(header) else 0


# The `error` of a substation's 503 when it is full: a refusal, not a fault of the substation.
NO_CAPACITY = "no capacity"


def new_session_id(substation: str) -> str:
    """`<substation>.<16 hex>`: the holder is in the id, so DELETE needs no lookup."""
    return f"{substation}.{secrets.token_hex(8)}"


def reservation_from(header: str | None) -> str:
    """The reservation member named by a request header, or '' when absent or malformed."""
    return header if header and RESERVATION_RE.match(header) else ""


def substation_of(session_id: str) -> str | None:
    """The substation encoded in a session id, or None when the id is malformed."""
    match = SESSION_ID_RE.match(session_id)
    return match.group(1) if match else None


def iso_from_ms(epoch_ms: int) -> str:
    """ISO-8601 UTC with milliseconds, e.g. 2025-01-31T12:00:00.250Z (all grid timestamps)."""
    stamp = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def kw(watts: int | float) -> float:
    """Watts (stored) to kW (spoken), rounded to the watt."""
    return round(watts / 1000, 3)
