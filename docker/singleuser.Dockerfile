# ngsci's single-user image, what cloud machines run as the notebook server: a Jupyter
# docker-stacks image (JupyterLab, jupyterhub-singleuser, conda) with ngsci's parts added: the
# JupyterLab extension, the %ngsci magic loaded in every IPython kernel, the `ngsci` CLI and
# `ngsci agent` (on Node, copied from NODE_BASE), and inotify-tools for the data-access audit.
# The notebook account is jovyan with uid 2000 (NOTEBOOK_UID in terraform/src/cloud-init.ts):
# machines run it with `--user 2000:100`, never as uid 1000, which their default sudo user holds.
#
# BASE picks the flavour; build from the repository root, with BuildKit (as hub.Dockerfile):
#   docker build -f docker/singleuser.Dockerfile -t ngsci/singleuser:cpu .
#   docker build -f docker/singleuser.Dockerfile \
#     --build-arg BASE=quay.io/jupyter/pytorch-notebook:cuda12-latest -t ngsci/singleuser:cuda12 .
# BASE may also be a plain Debian bookworm image (as in tests/deploy, where no image registry is
# reachable): JupyterLab and JupyterHub then go into a venv at /opt/ngsci-python and jovyan
# (uid 2000, group users) is created. NODE_BASE is any bookworm image with Node 20 in /usr/local;
# APP is `source` or `prebuilt`, as in hub.Dockerfile.
# A GPU machine checks at boot that `nvidia-smi -L` sees its GPU inside the image and that
# `ngsci agent --help` runs; an image without either fails the start with a clear error.
ARG BASE=quay.io/jupyter/scipy-notebook:latest
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
# hub.Dockerfile, so one build serves both images):
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

FROM ${NODE_BASE} AS node

FROM ${BASE}
USER root
# a plain Debian base has no Jupyter: a venv with JupyterLab and JupyterHub (docker-stacks images
# have both, and conda's pip comes first on their PATH)
ENV PATH=$PATH:/opt/ngsci-python/bin
RUN --mount=type=cache,target=/root/.cache/pip,id=ngsci-pip \
    if ! command -v inotifywait > /dev/null; then \
      apt-get update \
      && apt-get install -y --no-install-recommends inotify-tools \
      && rm -rf /var/lib/apt/lists/*; \
    fi \
 && if ! command -v jupyterhub-singleuser > /dev/null; then \
      if ! python3 -c 'import ensurepip' 2> /dev/null; then \
        apt-get update \
        && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
        && rm -rf /var/lib/apt/lists/*; \
      fi \
      && python3 -m venv /opt/ngsci-python \
      && /opt/ngsci-python/bin/pip install 'jupyterhub>=5,<7' 'jupyterlab>=4.2,<5' 'dill>=0.3.8'; \
    fi
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=app /out/cli /opt/ngsci/cli
# the kernels' %ngsci (stdlib, IPython, and dill for variables kept across a resize) and the
# extension; the spawner-bridge is the hub's, not ours
RUN --mount=type=bind,from=app,source=/out/wheels,target=/tmp/ngsci-wheels \
    --mount=type=cache,target=/root/.cache/pip,id=ngsci-pip \
    "$(dirname "$(command -v jupyterhub-singleuser)")/python" -m pip install \
      /tmp/ngsci-wheels/ngsci_magic-*.whl /tmp/ngsci-wheels/ngsci_labextension-*.whl \
 && mkdir -p /etc/ipython \
 && printf '# ngsci: load the %%ngsci magic in every kernel\nc = get_config()  # noqa: F821\nc.InteractiveShellApp.extensions.append("ngsci_magic")\n' > /etc/ipython/ipython_config.py \
 && printf '#!/bin/sh\nexec /usr/local/bin/node /opt/ngsci/cli/dist/index.js "$@"\n' > /usr/local/bin/ngsci \
 && chmod 0755 /usr/local/bin/ngsci \
 && nb_user="${NB_USER:-jovyan}" \
 && if id "$nb_user" > /dev/null 2>&1; then usermod -u 2000 "$nb_user"; \
    else useradd --uid 2000 --gid 100 --create-home --shell /bin/bash "$nb_user"; fi \
 && if command -v fix-permissions > /dev/null; then \
      fix-permissions "${CONDA_DIR}" "/home/$nb_user"; fi \
 && command -v jupyterhub-singleuser \
 && ngsci agent --help > /dev/null
ENV NB_UID=2000
USER 2000
WORKDIR /home/jovyan
