# Caddy from Debian's packages (2.6), for a machine without an image registry (the deployment
# test's TLS variant, tests/deploy/tls.test.ts). With a registry, docker/compose.tls.yaml's default
# image caddy:2 does the same. Same folders as that image: /data (certificates, the local CA, the
# ACME account) and /config; runs as the unprivileged account `caddy`, allowed to listen on 80/443.
#   docker build -f docker/caddy.Dockerfile --build-arg BASE=ngsci-base:bookworm -t ngsci-caddy:2 docker
ARG BASE=debian:bookworm-slim
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends caddy libcap2-bin ca-certificates \
 && setcap cap_net_bind_service=+ep /usr/bin/caddy \
 && apt-get purge -y libcap2-bin && apt-get autoremove -y \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data /config /etc/caddy \
 && chown caddy:caddy /data /config
ENV XDG_DATA_HOME=/data XDG_CONFIG_HOME=/config
VOLUME /data /config
USER caddy
WORKDIR /srv
EXPOSE 80 443 443/udp
ENTRYPOINT ["caddy"]
CMD ["run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
