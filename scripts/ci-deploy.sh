#!/usr/bin/env bash
# CI: the deployment test (`npm run test:deploy`, docs/deploy-docker.md) on a Debian machine, as
# root, after `node scripts/setup.mjs` (the test reuses that build). Installs Docker, docker-compose
# and debootstrap from Debian's packages where missing, starts a Docker daemon without its default
# bridge (every container of the test uses the host's network, so all traffic stays on 127.0.0.1),
# runs the test, and stops the daemon again if it started it. Docker's build cache stays in
# /var/lib/docker, so a second run on the same machine is the warm one.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v dockerd > /dev/null 2>&1 || need+=(docker.io)
command -v docker-compose > /dev/null 2>&1 || need+=(docker-compose)
command -v debootstrap > /dev/null 2>&1 || need+=(debootstrap)
# the TLS variant's Chromium trusts Caddy's local CA through its own NSS database
command -v certutil > /dev/null 2>&1 || need+=(libnss3-tools)
if [ "${#need[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" > /dev/null
fi

dockerd_pid=
stop_dockerd() {
  if [ -n "$dockerd_pid" ] && kill -0 "$dockerd_pid" 2> /dev/null; then
    kill -TERM "$dockerd_pid"
    for _ in $(seq 1 60); do kill -0 "$dockerd_pid" 2> /dev/null || break; sleep 1; done
  fi
}
if ! docker info > /dev/null 2>&1; then
  dockerd --bridge=none > /tmp/dockerd.log 2>&1 &
  dockerd_pid=$!
  trap stop_dockerd EXIT
  for _ in $(seq 1 60); do docker info > /dev/null 2>&1 && break; sleep 1; done
  if ! docker info > /dev/null 2>&1; then
    echo "ci-deploy: the Docker daemon did not start; /tmp/dockerd.log ends with:" >&2
    tail -n 30 /tmp/dockerd.log >&2
    exit 1
  fi
fi

npm run test:deploy
