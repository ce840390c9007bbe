# The hub image: JupyterHub, configurable-http-proxy, hub-service (as a managed service) and the
# spawner-bridge. Build from the repository root:
#   docker build -f docker/hub.Dockerfile -t ngsci-hub .
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json tsconfig.base.json ./
COPY contract contract
COPY hub-service hub-service
COPY terraform terraform
COPY cli cli
RUN npm ci --no-audit --no-fund --workspaces --include-workspace-root \
 && npx tsc -b \
 && npm prune --omit=dev

FROM node:20-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates tini \
 && rm -rf /var/lib/apt/lists/*
ENV NGSCI_ROOT=/opt/ngsci NGSCI_VENV=/opt/ngsci/.venv NGSCI_DATA_DIR=/srv/ngsci PATH=/opt/ngsci/.venv/bin:$PATH
WORKDIR /opt/ngsci
COPY --from=build /src/node_modules node_modules
COPY --from=build /src/contract contract
COPY --from=build /src/hub-service hub-service
COPY --from=build /src/terraform terraform
COPY --from=build /src/cli cli
COPY package.json ./
COPY spawner-bridge spawner-bridge
COPY deploy deploy
RUN python3 -m venv .venv && .venv/bin/pip install --no-cache-dir 'jupyterhub>=5,<7' ./spawner-bridge
# NGSCI_BRIDGE_SECRET and DATABASE_URL come from the environment (see compose.yaml); each local
# user's password is generated into $NGSCI_DATA_DIR/local-login.json (0600) on the first start.
# For production, replace the local login in deploy/jupyterhub_config.py with your authenticator.
# The hub runs as root so that NGSCI_LOCAL_ISOLATION=users can run each user's local server as
# that user's own account (useradd, from Debian's passwd package, is in the base image); the
# venv is built from /usr/bin/python3, so those accounts can run it.
ENV NGSCI_LOCAL_ISOLATION=users
VOLUME /srv/ngsci
EXPOSE 8000
ENTRYPOINT ["tini", "--"]
CMD ["jupyterhub", "-f", "/opt/ngsci/deploy/jupyterhub_config.py"]
