# sepm-exporter: a small image that runs as a non-root user on a read-only root file system.
#   docker build -t sepm-exporter .
#   docker run --read-only -p 10877:10877 -v sepm-state:/var/lib/sepm-exporter \
#     -v /etc/sepm-exporter:/etc/sepm-exporter:ro -v /mnt/sepm1:/mnt/sepm1:ro sepm-exporter
# The config's state_file must lie under /var/lib/sepm-exporter (the volume); see docs/deployment.md.
# Listen address and web config come from the environment, so `serve` and the HEALTHCHECK read the same:
#   -e SEPM_EXPORTER_WEB_LISTEN_ADDRESS=:9999 -e SEPM_EXPORTER_WEB_CONFIG_FILE=/etc/sepm-exporter/web.yml

# --- build: a wheel of the project, then a virtual environment holding it and its dependencies ---
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml setup.py MANIFEST.in README.md LICENSE requirements.lock ./
COPY exporter ./exporter
COPY docs/runbooks ./docs/runbooks
# The dependencies exactly as pinned and hashed in requirements.lock (the same as the Windows bundle's).
RUN python -m venv /opt/sepm-exporter \
 && /opt/sepm-exporter/bin/pip install --require-hashes --only-binary=:all: -r requirements.lock \
 && /opt/sepm-exporter/bin/pip wheel --no-deps --wheel-dir /tmp/wheels . \
 && /opt/sepm-exporter/bin/pip install --no-deps /tmp/wheels/*.whl \
 && /opt/sepm-exporter/bin/pip check

# --- run: the environment alone, no compilers, no pip cache, no sources ---
FROM python:3.11-slim-bookworm
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="sepm-exporter" \
      org.opencontainers.image.description="Prometheus exporter for SEPM certificates, SyLink.xml parity and stranded clients" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/sepm-exporter/sepm-exporter" \
      org.opencontainers.image.documentation="https://github.com/sepm-exporter/sepm-exporter/blob/main/docs/deployment.md"
RUN groupadd --system --gid 10877 sepm \
 && useradd --system --uid 10877 --gid sepm --home-dir /var/lib/sepm-exporter --no-create-home --shell /usr/sbin/nologin sepm \
 && mkdir -p /var/lib/sepm-exporter /etc/sepm-exporter \
 && chown sepm:sepm /var/lib/sepm-exporter
COPY --from=build /opt/sepm-exporter /opt/sepm-exporter
ENV PATH=/opt/sepm-exporter/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    SEPM_EXPORTER_WEB_LISTEN_ADDRESS=:10877
USER 10877:10877
VOLUME ["/var/lib/sepm-exporter"]
EXPOSE 10877
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["sepm-exporter", "healthcheck"]
ENTRYPOINT ["sepm-exporter"]
CMD ["serve", "--config", "/etc/sepm-exporter/config.yml"]
