# syntax=docker/dockerfile:1
#
# Herald: one image for every role. `docker run IMAGE` serves (API and workers in one process);
# ENABLE_API=false / ENABLE_WORKERS=false pick a role; `docker run IMAGE migrate` migrates.
# See the README, section Deploying. tests/deploy/test_dockerfile.py keeps this file honest.
#
# BASE_IMAGE: any Debian-like image with Python 3.11+ as `python3` and its venv module. The
# default is the official image (pin it by digest in production, e.g.
# python:3.11-slim-bookworm@sha256:...); without a registry, a local Debian bookworm with
# python3 and python3-venv works the same (tests/deploy/test_image.py builds one with debootstrap).
ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------------------------
# builder: resolve nothing, compile nothing. Install the locked wheels into /opt/venv, then build
# Herald's own wheel and add it. pip, hatchling and the source tree stay in this stage.
# ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# Build-time only, never in the image: a private index (PIP_INDEX_URL) and the CA bundle that
# trusts it or an intercepting proxy (PIP_CERT, a file mounted into the build with --volume).
ARG PIP_INDEX_URL
ARG PIP_CERT

WORKDIR /src
# /opt/build: pip and the build backend (builder only). /opt/venv: what the image runs, no pip.
# python3, not python: a plain Debian base has no `python` command.
RUN python3 -m venv /opt/build \
    && python3 -m venv --without-pip /opt/venv

# 1. Dependencies, from the lock file alone (pinned versions and hashes, wheels only): this
#    layer is rebuilt only when requirements.lock changes, not on every source edit. pip's cache
#    is a cache mount: reused by the next build, never part of a layer.
COPY requirements.lock ./
RUN --mount=type=cache,target=/root/.cache/pip \
    /opt/build/bin/pip --python /opt/venv/bin/python install \
        --require-hashes --no-deps --only-binary=:all: -r requirements.lock

# 2. The build backend, locked too, for the builder's own tools venv only.
COPY requirements-build.lock ./
RUN --mount=type=cache,target=/root/.cache/pip \
    /opt/build/bin/pip install --require-hashes --no-deps --only-binary=:all: \
        -r requirements-build.lock

# 3. Herald itself: its dependencies are already there (--no-deps), so nothing else is fetched.
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /dist . \
    && /opt/build/bin/pip --python /opt/venv/bin/python install --no-deps /dist/*.whl \
    && /opt/venv/bin/python -c "import herald.cli"

# ---------------------------------------------------------------------------------------------
# runtime: the slim base, the virtualenv, a non-root user. No compilers, no pip cache, no source.
# ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS runtime

LABEL org.opencontainers.image.title="herald" \
      org.opencontainers.image.description="Notification service: API and delivery workers in one process" \
      org.opencontainers.image.licenses="MIT"

RUN groupadd --system --gid 10001 herald \
    && useradd --system --uid 10001 --gid herald --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin herald

COPY --from=builder /opt/venv /opt/venv

# HOST must be 0.0.0.0 in a container; every other setting keeps Herald's default unless the
# orchestrator sets it (see the README, section Deploying, for the list the examples use).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    GRPC_HOST=0.0.0.0 \
    GRPC_PORT=50051 \
    LOG_FORMAT=json

# An empty working directory: Herald reads an optional .env from it, and there is none.
WORKDIR /app
USER 10001:10001

# 8000: HTTP (API, /health/*, /metrics); 50051: gRPC (API role, unless ENABLE_GRPC=false).
EXPOSE 8000 50051
STOPSIGNAL SIGTERM

# Liveness only (never Postgres or Redis): a container is not restarted for a database outage.
# python, because the slim image has no curl; http.client, so that no HTTP_PROXY applies.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import http.client, os, sys; c = http.client.HTTPConnection('127.0.0.1', int(os.environ.get('PORT', '8000')), timeout=4); c.request('GET', '/health/live'); sys.exit(c.getresponse().status != 200)"]

# Exec form: herald is PID 1 and receives SIGTERM itself (it drains, see SHUTDOWN_GRACE_SECONDS).
ENTRYPOINT ["herald"]
CMD ["serve"]
