# The single-user image that cloud instances run: JupyterLab with the ngsci extension, the
# %ngsci magic, the ngsci CLI and agent, and inotify-tools for the data-access audit.
#   docker build -f docker/singleuser.Dockerfile -t ngsci-singleuser .
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY . .
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv python3-pip \
 && npm ci --no-audit --no-fund \
 && npx tsc -b \
 && python3 -m venv /build-venv \
 && /build-venv/bin/pip install --no-cache-dir 'jupyterlab>=4.2,<5' build \
 && (test ! -d labextension || PATH=/build-venv/bin:$PATH /build-venv/bin/python -m build --wheel --outdir /wheels labextension)

FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs inotify-tools tini \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
# the kernels' %ngsci (magic/, stdlib + IPython); the spawner-bridge is the hub's, not the instance's
COPY magic /opt/ngsci/magic
COPY --from=build /src/cli/dist /opt/ngsci/cli/dist
COPY --from=build /src/contract/dist /opt/ngsci/contract/dist
RUN pip install --no-cache-dir 'jupyterhub>=5,<7' 'jupyterlab>=4.2,<5' /opt/ngsci/magic /wheels/*.whl \
 && mkdir -p /usr/local/etc/ipython \
 && printf '# ngsci: load the %%ngsci magic in every kernel\nc = get_config()  # noqa: F821\nc.InteractiveShellApp.extensions.append("ngsci_magic")\n' > /usr/local/etc/ipython/ipython_config.py \
 && printf '#!/bin/sh\nexec node /opt/ngsci/cli/dist/index.js "$@"\n' > /usr/local/bin/ngsci && chmod +x /usr/local/bin/ngsci \
 && useradd -m -u 1000 researcher
USER researcher
WORKDIR /home/researcher
EXPOSE 8888
ENTRYPOINT ["tini", "--"]
CMD ["jupyterhub-singleuser"]
