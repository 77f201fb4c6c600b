# syntax=docker/dockerfile:1
# policy-service image: build stage compiles durable_rules' C extension and installs the locked runtime
# dependencies plus the service into /opt/policy-service with scripts/install (the script CI uses);
# the runtime stage copies that venv onto a slim Debian with Python and no compiler, as a non-root user.
#
#   docker build -t policy-service .
#   docker run --rm -e POLICY_DATABASE_URL=... policy-service policy-service db upgrade   # once per release
#   docker run -p 8000:8000 -e POLICY_DATABASE_URL=... policy-service
#
# Both stages use Debian bookworm's python3.11 at /usr/bin/python3.11, so the venv copied from the build
# stage finds the same interpreter in the runtime stage. scripts/check-image replays these steps in fresh
# debootstrap roots (Docker does not run on the project's machines).

FROM debian:bookworm-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3.11 python3.11-venv python3.11-dev gcc g++ make ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.cfg README.md ./
COPY requirements/ requirements/
COPY scripts/install scripts/install
COPY policy_service/ policy_service/
COPY rules/ rules/
COPY fixtures/ fixtures/
RUN VENV=/opt/policy-service LOCK=runtime PYTHON=/usr/bin/python3.11 bash scripts/install \
 && find /opt/policy-service -name __pycache__ -prune -exec rm -rf {} +

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3.11 libstdc++6 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /srv/policy-service --create-home policy \
 && mkdir -p /srv/policy-service/data \
 && chown policy:policy /srv/policy-service/data
COPY --from=build /opt/policy-service /opt/policy-service
COPY gunicorn.conf.py /srv/policy-service/gunicorn.conf.py
ENV PATH=/opt/policy-service/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8000 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/policy-service-metrics \
    POLICY_DATABASE_URL=sqlite:////srv/policy-service/data/policy-service.sqlite3
WORKDIR /srv/policy-service
USER policy
EXPOSE 8000
VOLUME ["/srv/policy-service/data"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/readyz', timeout=4)"]
CMD ["policy-service-gunicorn", "-c", "gunicorn.conf.py", "policy_service:create_app()"]
