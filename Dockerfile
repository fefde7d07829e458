# binance-mcp as a service in its own container (docs/deployment.md, "The container"). Not built in CI: the CI
# machine has no container runtime; tests/service/test_deploy_files.py checks this file's essentials.
#
#   docker build -t binance-mcp .
#   docker volume create binance-mcp-state
#   docker run -d --name binance-mcp -p 127.0.0.1:8765:8765 -v binance-mcp-state:/var/lib/binance-mcp \
#     -v /etc/binance-mcp/policy.yaml:/etc/binance-mcp/policy.yaml:ro \
#     -v /etc/binance-mcp/api-secret:/run/secrets/binance-api-secret:ro \
#     -e BINANCE_MCP_MODE=testnet -e BINANCE_API_KEY=... -e BINANCE_API_SECRET_FILE=/run/secrets/binance-api-secret \
#     binance-mcp
#   docker run --rm -v binance-mcp-state:/var/lib/binance-mcp binance-mcp agents add my-agent
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY policies ./policies
COPY binance_mcp ./binance_mcp
RUN pip install . && rm -rf /src

# The service's own user, not root; it owns the state directory (mode 0700) and nothing else.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/binance-mcp --shell /usr/sbin/nologin binance-mcp \
    && install -d -m 0700 -o binance-mcp -g binance-mcp /var/lib/binance-mcp \
    && install -d -m 0755 /etc/binance-mcp
# The keys come from the run's environment (-e BINANCE_API_KEY, -e BINANCE_API_SECRET_FILE or a private key file):
# none is baked in.
ENV BINANCE_MCP_STATE_DIR=/var/lib/binance-mcp BINANCE_MCP_POLICY=/etc/binance-mcp/policy.yaml
VOLUME ["/var/lib/binance-mcp"]
WORKDIR /var/lib/binance-mcp
USER binance-mcp
EXPOSE 8765

# Inside a container the service must listen on 0.0.0.0 for a published port to reach it, and a non-loopback bind
# needs --allow-remote with TLS settings or the statement that a TLS proxy is in front. The default says the
# latter: publish the port on the host's loopback only (-p 127.0.0.1:8765:8765) or on a private network to the
# proxy. For TLS in the server instead, replace the command:
#   ... binance-mcp serve --http 0.0.0.0:8765 --allow-remote --tls-cert /run/secrets/tls.crt --tls-key /run/secrets/tls.key
ENTRYPOINT ["binance-mcp"]
CMD ["serve", "--http", "0.0.0.0:8765", "--allow-remote", "--behind-tls-proxy"]
