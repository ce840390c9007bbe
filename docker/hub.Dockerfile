# The hub image: JupyterHub, configurable-http-proxy, hub-service (as a managed service), the
# spawner-bridge, and what local instances run (JupyterLab with the ngsci extension, %ngsci and
# `ngsci agent`). It runs as the unprivileged account `ngsci` (uid 1000), never as root.
# Build from the repository root, with BuildKit (the default from Docker 23 on; on Docker 20.10 set
# DOCKER_BUILDKIT=1, for docker-compose 1.x also COMPOSE_DOCKER_CLI_BUILD=1):
#   docker build -f docker/hub.Dockerfile -t ngsci-hub .
# Arguments:
# - NODE_BASE: any Debian bookworm image with Node 20 in /usr/local (the default, or one made with
#   docker/node-base.Dockerfile where no image registry is reachable, as in tests/deploy);
# - APP: `source` (the default) builds the TypeScript, the JupyterLab extension and the Python
#   wheels below from the repository; `prebuilt` takes them from the context's prebuilt/ folder
#   instead, laid out as the `app-source` stage's /out (tests/deploy/images.ts fills it from the
#   host's own build, so the deployment test does not build everything twice).
ARG NODE_BASE=node:20-bookworm-slim
ARG APP=source

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

# Everything built from source, in /out (the same stage, byte for byte, as in
# singleuser.Dockerfile, so one build serves both images):
#   /out/app     package.json, node_modules (production only), contract, hub-service, terraform, cli
#   /out/chp     configurable-http-proxy with its dependencies
#   /out/cli     the `ngsci` CLI alone (its build, the contract's, zod, and ws, which the agent
#                reaches its server's kernels with), for the single-user image
#   /out/wheels  the spawner-bridge, %ngsci (ngsci_magic) and the JupyterLab extension as wheels
FROM ${NODE_BASE} AS app-source
RUN if ! command -v python3 > /dev/null || ! python3 -c 'import ensurepip' 2> /dev/null; then \
      apt-get update \
      && apt-get install -y --no-install-recommends python3 python3-venv \
      && rm -rf /var/lib/apt/lists/*; \
    fi
# the JupyterLab extension is built with a JupyterLab
RUN --mount=type=cache,target=/root/.cache/pip,id=ngsci-pip \
    python3 -m venv /build-venv \
 && /build-venv/bin/pip install 'jupyterlab>=4.2,<5' build
WORKDIR /src
COPY tsconfig.json tsconfig.base.json ./
# every workspace's package.json, so the lockfile matches; only those below are installed
COPY --from=manifests /m/ ./
RUN --mount=type=cache,target=/root/.npm,id=ngsci-npm \
    npm ci --no-audit --no-fund --include-workspace-root \
      --workspace contract --workspace hub-service --workspace terraform --workspace cli \
      --workspace labextension
COPY package.json ./
COPY contract contract
COPY hub-service hub-service
COPY terraform terraform
COPY cli cli
COPY labextension labextension
COPY spawner-bridge spawner-bridge
COPY magic magic
RUN --mount=type=cache,target=/root/.cache/pip,id=ngsci-pip \
    npx tsc -b contract hub-service terraform cli \
 && NGSCI_VENV=/build-venv npm run build --workspace labextension \
 && /build-venv/bin/pip wheel --no-deps --wheel-dir /out/wheels ./labextension ./spawner-bridge ./magic
# configurable-http-proxy is a root devDependency (for `npm start`): the image gets it on its own,
# at the lockfile's version and with the root package.json's overrides for it
RUN --mount=type=cache,target=/root/.npm,id=ngsci-npm \
    mkdir -p /out/chp \
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
      --workspace contract --workspace hub-service --workspace terraform --workspace cli \
 && mkdir -p /out/app /out/cli/node_modules/@ngsci/contract \
 && cp -a package.json node_modules contract hub-service terraform cli /out/app/ \
 && cp -r cli/dist cli/package.json /out/cli/ \
 && cp -r contract/dist contract/package.json /out/cli/node_modules/@ngsci/contract/ \
 && cp -r node_modules/zod /out/cli/node_modules/zod \
 && cp -r node_modules/ws /out/cli/node_modules/ws

# the same /out, made outside the image (tests/deploy/images.ts)
FROM scratch AS app-prebuilt
COPY prebuilt/ /out/

FROM app-${APP} AS app

FROM ${NODE_BASE}
RUN if ! command -v python3 > /dev/null || ! command -v tini > /dev/null \
      || ! python3 -c 'import ensurepip' 2> /dev/null; then \
      apt-get update \
      && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates tini \
      && rm -rf /var/lib/apt/lists/*; \
    fi \
 && if id node > /dev/null 2>&1; then userdel --remove node; fi \
 && useradd --uid 1000 --user-group --home-dir /srv/ngsci --no-create-home --shell /bin/sh ngsci
ENV NGSCI_ROOT=/opt/ngsci NGSCI_VENV=/opt/ngsci/.venv NGSCI_DATA_DIR=/srv/ngsci \
    PATH=/opt/ngsci/.venv/bin:$PATH
WORKDIR /opt/ngsci
# Layers from the least to the most often changed, so a code change rebuilds only the last ones.
# Python's third-party packages first (the local instances' kernels get numpy and pandas;
# oauthenticator is the production login, see docs/install.md):
RUN --mount=type=cache,target=/root/.cache/pip,id=ngsci-pip \
    python3 -m venv .venv \
 && .venv/bin/pip install 'jupyterhub>=5,<7' 'jupyterlab>=4.2,<5' 'numpy>=1.24' 'pandas>=2' \
      'oauthenticator>=17.4,<18' 'ipython>=8' 'dill>=0.3.8'
COPY --from=app /out/chp /opt/chp
COPY --from=app /out/app/node_modules node_modules
# ngsci's own Python parts (their dependencies are above, or pip fetches them)
RUN --mount=type=bind,from=app,source=/out/wheels,target=/tmp/ngsci-wheels \
    --mount=type=cache,target=/root/.cache/pip,id=ngsci-pip \
    .venv/bin/pip install /tmp/ngsci-wheels/*.whl \
 && mkdir -p /etc/ipython \
 && printf '# ngsci: load the %%ngsci magic in every kernel\nc = get_config()  # noqa: F821\nc.InteractiveShellApp.extensions.append("ngsci_magic")\n' > /etc/ipython/ipython_config.py
COPY --from=app /out/app/package.json package.json
COPY --from=app /out/app/contract contract
COPY --from=app /out/app/terraform terraform
COPY --from=app /out/app/cli cli
COPY --from=app /out/app/hub-service hub-service
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
