# Postgres from Debian's packages, for a machine without an image registry (the deployment test):
# the same environment (POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB) and data folder
# (/var/lib/postgresql/data) as the postgres:16 image docker/compose.yaml uses, plus PGPORT.
#   docker build -f docker/postgres.Dockerfile --build-arg BASE=ngsci-base:bookworm -t ngsci-postgres:15 docker
ARG BASE=debian:bookworm-slim
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 tini \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/postgresql/data /run/postgresql \
 && chown -R postgres:postgres /var/lib/postgresql /run/postgresql
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data PGPORT=5432
VOLUME /var/lib/postgresql/data
USER postgres
ENTRYPOINT ["tini", "--", "/usr/local/bin/postgres-entrypoint.sh"]
