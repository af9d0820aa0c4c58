"""The stack: every service defined once (services.py), `make up` under supervisord (up.py,
supervisor.py, control.py), the test suite's LocalStack (local.py) and compose.yaml (compose.py)."""
