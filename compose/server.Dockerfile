# notary-server: the HTTPS TUF API (port 4443).
#
# Build context: the repository root (docker-compose.yml sets it), e.g.
#   docker build -f compose/server.Dockerfile -t notary-server .
# Config and certificates are not baked in: mount them at /etc/notary (see README.md).

# --- build: cargo needs every workspace member to load the workspace. Only the listed
# directories are copied, so a local target/ never ends up in a layer.
FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends default-libmysqlclient-dev libpq-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY notary-tuf notary-tuf
COPY notary-common notary-common
COPY proto proto
COPY notary-signer notary-signer
COPY notary-server notary-server
COPY migrations migrations
COPY tests tests
COPY bench bench
COPY notary-migrate notary-migrate
COPY fuzz fuzz
COPY notary-tlog notary-tlog
COPY notary-log notary-log
RUN cargo build --release --locked -p notary-server \
 && install -m 0755 target/release/notary-server /usr/local/bin/notary-server

# --- run: libmariadb3 and libpq5 are the MySQL and PostgreSQL client libraries diesel
# links against (dynamically).
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libmariadb3 libpq5 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin notary
COPY --from=build /usr/local/bin/notary-server /usr/local/bin/notary-server
USER 10001
EXPOSE 4443
ENTRYPOINT ["/usr/local/bin/notary-server"]
CMD ["-config", "/etc/notary/server-config.json", "-logf", "json", "-migrate"]
