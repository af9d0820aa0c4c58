"""Jepsen-style chaos testing of GridClock on `make up-hosts`: workload, nemesis, checker."""
