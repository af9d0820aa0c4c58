"""GridClock rush hour: `locust -f loadtest/locustfile.py --class-picker` (or `make loadtest`).

EVDriver plugs in through the balancer (BALANCER_URL), KVClient runs causal sessions across the
nodes (NODE_URLS). RushHourShape is picked up automatically in headless runs; in the web UI,
`--class-picker` offers it next to the plain user-count mode ("Default").
"""

try:  # run from the repo root: loadtest is a package
    from loadtest.shapes import RushHourShape
    from loadtest.users import EVDriver, KVClient
except ModuleNotFoundError:  # compose mounts loadtest/ alone at /mnt/locust
    from shapes import RushHourShape
    from users import EVDriver, KVClient

__all__ = ["EVDriver", "KVClient", "RushHourShape"]
