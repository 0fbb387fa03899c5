# syntax=docker/dockerfile:1
# cryptoliq-exporter: build a virtualenv in one stage, run it as a non-root user in a clean one.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Only what `pip install .` needs (.dockerignore keeps the rest out of the build context).
COPY pyproject.toml README.md ./
COPY exporter ./exporter
RUN python -m venv /opt/cryptoliq \
    && /opt/cryptoliq/bin/pip install .

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/cryptoliq/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN groupadd --system --gid 10001 cryptoliq \
    && useradd --system --uid 10001 --gid cryptoliq --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin cryptoliq \
    && install -d -o 10001 -g 10001 /var/lib/cryptoliq
# Snapshots of the rolling windows and heatmap (a named volume in compose; the root fs is read-only).
ENV CRYPTOLIQ_STATE_DIR=/var/lib/cryptoliq
COPY --from=build /opt/cryptoliq /opt/cryptoliq
USER 10001:10001
EXPOSE 9877
# GET /healthz on the configured port, over TLS when the web config has it; /healthz needs no
# credentials. It reads the CRYPTOLIQ_* variables and config files the exporter reads, not the
# exporter's command flags: give port, address and web config as variables in a container.
# Feed health is cryptoliq_exchange_up, not this.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["cryptoliq-exporter", "--healthcheck"]
ENTRYPOINT ["cryptoliq-exporter"]
