# Node 20 on a Debian bookworm image, for a machine without an image registry (the deployment
# test, tests/deploy): the build context is a folder with bin/node and lib/node_modules/npm, e.g.
# the host's own Node (a Debian/NodeSource build links only libc, libstdc++ and libgcc_s, which
# every bookworm image has). With a registry, use node:20-bookworm-slim instead: the Dockerfiles'
# NODE_BASE argument defaults to it.
#   docker build -f docker/node-base.Dockerfile --build-arg BASE=ngsci-base:bookworm -t ngsci-node:20 DIR
ARG BASE=debian:bookworm-slim
FROM ${BASE}
COPY bin/node /usr/local/bin/node
COPY lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && node --version && npm --version
