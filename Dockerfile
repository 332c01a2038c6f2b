# The loyalty gateway: a small image (Debian slim + a virtualenv), run as an unprivileged user.
#   docker build -t loyalty-gateway .
#   docker run -p 8080:8080 loyalty-gateway            # demo configuration on embedded SQLite
# compose.yaml runs it with PostgreSQL, a worker and a one-off migration (docs/deployment.md).

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY contracts ./contracts
COPY gateway ./gateway
COPY adapters ./adapters
RUN python -m venv /opt/gateway && /opt/gateway/bin/pip install --no-compile . \
    && find /opt/gateway -name '__pycache__' -prune -exec rm -rf {} +

FROM python:3.11-slim
LABEL org.opencontainers.image.title="loyalty-gateway" \
      org.opencontainers.image.description="Loyalty gateway for 1C tills/ERP and 1C-Bitrix shops"
ENV PATH=/opt/gateway/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8080 \
    GATEWAY_DATABASE_URL=sqlite:////var/lib/gateway/gateway.db
RUN groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid gateway --home-dir /var/lib/gateway --shell /usr/sbin/nologin gateway \
    && install -d -o gateway -g gateway -m 0750 /var/lib/gateway /etc/gateway
COPY --from=build /opt/gateway /opt/gateway
COPY docker/entrypoint.sh /usr/local/bin/gateway-entrypoint
COPY docker/healthcheck.py /usr/local/lib/gateway-healthcheck.py
USER gateway
WORKDIR /var/lib/gateway
VOLUME ["/var/lib/gateway"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "/usr/local/lib/gateway-healthcheck.py"]
ENTRYPOINT ["/usr/local/bin/gateway-entrypoint"]
CMD ["serve"]
