# ngsci's single-user image, what cloud machines run as the notebook server: a Jupyter
# docker-stacks image (JupyterLab, jupyterhub-singleuser, conda) with ngsci's parts added: the
# JupyterLab extension, the %ngsci magic loaded in every IPython kernel, the `ngsci` CLI and
# `ngsci agent` (on Node, copied from the build stage), and inotify-tools for the data-access audit.
# The notebook account is jovyan with uid 2000 (NOTEBOOK_UID in terraform/src/cloud-init.ts):
# machines run it with `--user 2000:100`, never as uid 1000, which their default sudo user holds.
#
# BASE picks the flavour; build from the repository root:
#   docker build -f docker/singleuser.Dockerfile -t ngsci/singleuser:cpu .
#   docker build -f docker/singleuser.Dockerfile \
#     --build-arg BASE=quay.io/jupyter/pytorch-notebook:cuda12-latest -t ngsci/singleuser:cuda12 .
# A GPU machine checks at boot that `nvidia-smi -L` sees its GPU inside the image and that
# `ngsci agent --help` runs; an image without either fails the start with a clear error.
ARG BASE=quay.io/jupyter/scipy-notebook:latest

FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json tsconfig.base.json ./
COPY contract contract
COPY cli cli
COPY labextension labextension
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \
 && npm ci --no-audit --no-fund --include-workspace-root \
      --workspace contract --workspace cli --workspace labextension \
 && npx tsc -b contract cli \
 && python3 -m venv /build-venv \
 && /build-venv/bin/pip install --no-cache-dir 'jupyterlab>=4.2,<5' build \
 && NGSCI_VENV=/build-venv npm run build --workspace labextension \
 && /build-venv/bin/python -m build --wheel --outdir /wheels labextension
# the CLI with exactly what it needs at run time: its own build, the contract's, and zod
RUN mkdir -p /out/cli/node_modules/@ngsci/contract \
 && cp -r cli/dist cli/package.json /out/cli/ \
 && cp -r contract/dist contract/package.json /out/cli/node_modules/@ngsci/contract/ \
 && cp -r node_modules/zod /out/cli/node_modules/zod

FROM ${BASE}
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends inotify-tools \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/node /usr/local/bin/node
COPY --from=build /out/cli /opt/ngsci/cli
COPY --from=build /wheels /tmp/ngsci-wheels
# the kernels' %ngsci (magic/: stdlib and IPython only); the spawner-bridge is the hub's, not ours
COPY magic /tmp/ngsci-magic
RUN pip install --no-cache-dir /tmp/ngsci-magic /tmp/ngsci-wheels/*.whl \
 && rm -rf /tmp/ngsci-magic /tmp/ngsci-wheels \
 && mkdir -p /etc/ipython \
 && printf '# ngsci: load the %%ngsci magic in every kernel\nc = get_config()  # noqa: F821\nc.InteractiveShellApp.extensions.append("ngsci_magic")\n' > /etc/ipython/ipython_config.py \
 && printf '#!/bin/sh\nexec /usr/local/bin/node /opt/ngsci/cli/dist/index.js "$@"\n' > /usr/local/bin/ngsci \
 && chmod 0755 /usr/local/bin/ngsci \
 && usermod -u 2000 "${NB_USER}" \
 && fix-permissions "${CONDA_DIR}" "/home/${NB_USER}" \
 && command -v jupyterhub-singleuser \
 && ngsci agent --help > /dev/null
ENV NB_UID=2000
USER 2000
WORKDIR /home/${NB_USER}
