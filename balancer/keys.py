"""Balancer state in the grid Redis, shared by every worker and every balancer process."""

STRATEGY = "grid:bal:strategy"      # STRING: current strategy (unset: ROUTING_STRATEGY)
HEALTH = "grid:bal:health"          # HASH name -> "1" healthy | "0" ejected (unset: healthy)
SILENT = "grid:bal:silent"          # HASH name -> consecutive health probes left unanswered
FAILS = "grid:bal:fails"            # HASH name -> consecutive request-path failures
ROUTED = "grid:bal:routed"          # HASH "<name>|<outcome>" -> requests sent there
RECENT = "grid:bal:recent"          # LIST of decision JSON, newest first, trimmed to 50
RR = "grid:bal:rr"                  # STRING counter for round-robin
HEALTH_LOCK = "grid:bal:health-lock"  # one active checker per interval across all workers
RECENT_MAX = 50
# In-flight reservations live with the substation (grid.keys: grid:sub:<name>:reserved)
# because its admission settles them atomically (grid.wire.RESERVATION_HEADER).
