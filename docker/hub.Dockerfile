# The hub image: JupyterHub, configurable-http-proxy, hub-service (as a managed service), the
# spawner-bridge, and what local instances run (JupyterLab with the ngsci extension, %ngsci and
# `ngsci agent`). It runs as the unprivileged account `ngsci` (uid 1000), never as root.
# Build from the repository root:
#   docker build -f docker/hub.Dockerfile -t ngsci-hub .
# NODE_BASE is any Debian bookworm image with Node 20 in /usr/local (the default, or one made with
# docker/node-base.Dockerfile where no image registry is reachable, as in tests/deploy).
ARG NODE_BASE=node:20-bookworm-slim

# the package manifests without their "scripts": editing a script does not re-run `npm ci`
FROM ${NODE_BASE} AS manifests
WORKDIR /m
COPY package.json package-lock.json ./
COPY tests/package.json tests/package.json
COPY bench/package.json bench/package.json
COPY contract/package.json contract/package.json
COPY hub-service/package.json hub-service/package.json
COPY terraform/package.json terraform/package.json
COPY cli/package.json cli/package.json
COPY labextension/package.json labextension/package.json
RUN find . -name package.json -exec node -e ' \
      const fs = require("fs"); \
      for (const f of process.argv.slice(1)) { \
        const p = JSON.parse(fs.readFileSync(f, "utf8")); \
        delete p.scripts; \
        fs.writeFileSync(f, JSON.stringify(p, null, 2)); \
      }' {} +

FROM ${NODE_BASE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
# the JupyterLab extension is built as a wheel below, with a JupyterLab
RUN python3 -m venv /build-venv \
 && /build-venv/bin/pip install --no-cache-dir 'jupyterlab>=4.2,<5' build
WORKDIR /src
COPY tsconfig.json tsconfig.base.json ./
# every workspace's package.json, so the lockfile matches; only those below are installed
COPY --from=manifests /m/ ./
RUN npm ci --no-audit --no-fund --include-workspace-root \
      --workspace contract --workspace hub-service --workspace terraform --workspace cli \
      --workspace labextension
COPY package.json ./
COPY contract contract
COPY hub-service hub-service
COPY terraform terraform
COPY cli cli
COPY labextension labextension
RUN npx tsc -b contract hub-service terraform cli \
 && NGSCI_VENV=/build-venv npm run build --workspace labextension \
 && /build-venv/bin/python -m build --wheel --outdir /wheels labextension
# configurable-http-proxy is a root devDependency (for `npm start`): the image gets it on its own,
# at the lockfile's version and with the root package.json's overrides for it
RUN mkdir -p /out/chp \
 && node -e ' \
      const fs = require("fs"); \
      const lock = JSON.parse(fs.readFileSync("package-lock.json", "utf8")); \
      const root = JSON.parse(fs.readFileSync("package.json", "utf8")); \
      const version = lock.packages["node_modules/configurable-http-proxy"].version; \
      fs.writeFileSync("/out/chp/package.json", JSON.stringify({ \
        private: true, \
        dependencies: { "configurable-http-proxy": version }, \
        overrides: (root.overrides || {})["configurable-http-proxy"] || {}, \
      }, null, 2));' \
 && cd /out/chp && npm install --no-audit --no-fund --omit=dev \
 && /out/chp/node_modules/.bin/configurable-http-proxy --version
RUN npm prune --omit=dev --no-audit --no-fund --include-workspace-root \
      --workspace contract --workspace hub-service --workspace terraform --workspace cli

FROM ${NODE_BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && if id node > /dev/null 2>&1; then userdel --remove node; fi \
 && useradd --uid 1000 --user-group --home-dir /srv/ngsci --no-create-home --shell /bin/sh ngsci
ENV NGSCI_ROOT=/opt/ngsci NGSCI_VENV=/opt/ngsci/.venv NGSCI_DATA_DIR=/srv/ngsci \
    PATH=/opt/ngsci/.venv/bin:$PATH
WORKDIR /opt/ngsci
# Python first: it changes least often, so code changes rebuild only the layers below
RUN python3 -m venv .venv \
 && .venv/bin/pip install --no-cache-dir 'jupyterhub>=5,<7' 'jupyterlab>=4.2,<5' 'numpy>=1.24' 'pandas>=2'
COPY spawner-bridge spawner-bridge
COPY magic magic
COPY --from=build /wheels /tmp/ngsci-wheels
RUN .venv/bin/pip install --no-cache-dir ./spawner-bridge ./magic /tmp/ngsci-wheels/*.whl \
 && rm -rf /tmp/ngsci-wheels \
 && mkdir -p /etc/ipython \
 && printf '# ngsci: load the %%ngsci magic in every kernel\nc = get_config()  # noqa: F821\nc.InteractiveShellApp.extensions.append("ngsci_magic")\n' > /etc/ipython/ipython_config.py
COPY --from=build /out/chp /opt/chp
COPY --from=build /src/node_modules node_modules
COPY --from=build /src/contract contract
COPY --from=build /src/hub-service hub-service
COPY --from=build /src/terraform terraform
COPY --from=build /src/cli cli
COPY package.json ./
COPY deploy deploy
# deploy/jupyterhub_config.py runs <root>/node_modules/.bin/configurable-http-proxy and, beside
# each local instance, <venv>/bin/ngsci (`ngsci agent`)
RUN ln -sf /opt/chp/node_modules/.bin/configurable-http-proxy node_modules/.bin/configurable-http-proxy \
 && printf '#!/bin/sh\nexec /usr/local/bin/node /opt/ngsci/cli/dist/index.js "$@"\n' > .venv/bin/ngsci \
 && chmod 0755 .venv/bin/ngsci \
 && node_modules/.bin/configurable-http-proxy --version \
 && ngsci agent --help > /dev/null \
 && mkdir -p /srv/ngsci && chown ngsci:ngsci /srv/ngsci && chmod 0700 /srv/ngsci
# NGSCI_BRIDGE_SECRET, NGSCI_SECRET_KEY and DATABASE_URL come from the environment (compose.yaml).
# Local instances run inside this container as the same account as the service, so one hub user
# at most may have them (NGSCI_LOCAL_ISOLATION=shared; a second user gets 403 local_single_user):
# a demo. For a team, NGSCI_PROVISIONER=terraform puts each instance on its own cloud machine
# (docs/deploy-docker.md).
ENV NGSCI_LOCAL_ISOLATION=shared
USER ngsci
VOLUME /srv/ngsci
# the hub writes files relative to where it starts (the proxy's pid file): the data volume
WORKDIR /srv/ngsci
EXPOSE 8000
ENTRYPOINT ["tini", "--"]
CMD ["jupyterhub", "-f", "/opt/ngsci/deploy/jupyterhub_config.py"]
