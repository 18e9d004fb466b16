# One image for every function: the Knative Service picks its function with FUNCTION_SOURCE
# (functions-framework's own variable); FUNCTION_TARGET is `handle` in every main.py.
# Build: docker build -t REGISTRY/chat-service:VERSION .   (docs/deployment/README.md)
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: a virtual environment with the production dependencies only --------------------
# No extras: the embedded SecantusDB, Tansu and Valkey servers are development tools
# (pyproject's `devstack` extra) and never reach the image. Every dependency ships manylinux
# wheels, so no compiler is installed in either stage.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ONLY_BINARY=:all:
WORKDIR /src
RUN python -m venv /opt/chat-service
COPY pyproject.toml README.md ./
COPY shared ./shared
RUN /opt/chat-service/bin/pip install --no-cache-dir '.[otel]' \
    && /opt/chat-service/bin/pip uninstall --yes pip setuptools
COPY functions /app/functions
COPY kafka-sources /app/kafka-sources
# The root filesystem is read-only at run time: compile the functions' bytecode now (pip has
# compiled the installed packages), so a cold start never recompiles main.py.
RUN /opt/chat-service/bin/python -m compileall -q /app/functions

# --- run ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="chat-service" \
      org.opencontainers.image.description="Multi-channel chat backend: CloudEvents functions on Knative" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/chat-service /opt/chat-service
COPY --from=build /app/functions /app/functions
COPY --from=build /app/kafka-sources /app/kafka-sources
# The root filesystem is read-only in the cluster; the Services mount a writable emptyDir at
# TMPDIR, where gunicorn keeps its worker heartbeat files and (XDG_RUNTIME_DIR) control socket,
# and where the gunicorn workers share their metrics (PROMETHEUS_MULTIPROC_DIR, per pod).
ENV PATH=/opt/chat-service/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FUNCTION_TARGET=handle \
    TMPDIR=/tmp \
    XDG_RUNTIME_DIR=/tmp \
    PROMETHEUS_MULTIPROC_DIR=/tmp/metrics
WORKDIR /app
# A numeric non-root user (no passwd entry needed; Kubernetes' runAsNonRoot checks the number).
USER 10001:10001
EXPOSE 8080
# functions-framework serves with gunicorn: WORKERS and THREADS come from the Service's env;
# HOST defaults to 0.0.0.0 and PORT is set by Knative.
ENTRYPOINT ["python", "-m", "functions_framework"]
