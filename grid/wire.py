"""What substations and the balancer agree on over HTTP: names, session ids, headers, units."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

from common.settings import SUBSTATION_NAME_RE

NAME_RE = SUBSTATION_NAME_RE  # the one rule, shared with the SUBSTATIONS parser
SESSION_ID_RE = re.compile(r"^([A-Za-z0-9_-]{1,48})\.([0-9a-f]{16})$")
# A car waiting in the balancers' queue: "queue.<16 hex>"; once admitted on substation S its
# session is "S.<the same hex>". No substation may be called "queue".
QUEUE_PREFIX = "queue"

# The balancer names its least-utilization reservation ("<16 hex>:<min_w>:<max_w>") in this
# header; the substation's admission settles it atomically (grid/lua/admit.lua).
RESERVATION_HEADER = "X-Grid-Reservation"
RESERVATION_RE = re.compile(r"^[0-9a-f]{16}:[0-9]{1,10}:[0-9]{1,10}$")

# The session id the balancer chose for this try: its idempotency key, and the id it ends
# when it gives up on the try (so a late admission never leaves a session nobody knows of).
SESSION_HEADER = "X-Grid-Session"

# Redis-clock epoch ms after which the caller no longer waits for this admission.
DEADLINE_HEADER = "X-Grid-Deadline"
DEADLINE_RE = re.compile(r"^[0-9]{1,15}$")


def deadline_from(header: str | None) -> int:
    """The deadline named by a request header, or 0 (none) when absent or malformed."""
    return int(header) if header and DEADLINE_RE.match(header) else 0


# The `error` of a substation's 503 when it is full: a refusal, not a fault of the substation.
NO_CAPACITY = "no capacity"


def new_session_id(substation: str, hex16: str | None = None) -> str:
    """`<substation>.<16 hex>`: the holder is in the id, so DELETE needs no lookup."""
    return f"{substation}.{hex16 or secrets.token_hex(8)}"


def is_valid_name(name: str) -> bool:
    """A substation name: NAME_RE, and not the queue's prefix."""
    return bool(NAME_RE.match(name)) and name != QUEUE_PREFIX


def split_session_id(session_id: str) -> tuple[str, str] | None:
    """(holder, 16 hex) of a session or queue id, or None when malformed."""
    match = SESSION_ID_RE.match(session_id)
    return (match.group(1), match.group(2)) if match else None


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


WMS_PER_KWH = 3_600_000_000  # watt-milliseconds in one kWh


def kwh(wms: int) -> float:
    """Watt-milliseconds (stored) to kWh (spoken), rounded to the milliwatt-hour."""
    return round(wms / WMS_PER_KWH, 6)
