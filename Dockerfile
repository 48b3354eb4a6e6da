# syntax=docker/dockerfile:1.7
# Switchyard: one image for every role. The command picks the role:
#   switchyard serve                      single node (the default): all roles, embedded log/store
#   switchyard ingress | projector | sink | stream <session-nps|judge|regression>
# docker-compose.kafka.yml builds it with SWITCHYARD_FEATURES=kafka,scylla for distributed mode.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

# --- build ----------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
# cmake builds the bundled librdkafka behind the `kafka` feature (Debian's is too old); the SSL
# and SASL headers are for its TLS/SASL support.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake libssl-dev libsasl2-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Cargo features of package `switchyard`, comma-separated (empty = the single-node build).
ARG SWITCHYARD_FEATURES=""
# The registry and target caches survive between builds (BuildKit), so a rebuild after a code
# change recompiles our crates only. --locked: the image builds exactly what Cargo.lock says.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p switchyard ${SWITCHYARD_FEATURES:+--features "$SWITCHYARD_FEATURES"} \
 && install -D -m 0755 target/release/switchyard /out/switchyard

# --- runtime --------------------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim
# ca-certificates: HTTPS to model providers; curl: the compose healthchecks (GET /readyz);
# libssl3/libsasl2-2: librdkafka's TLS and SASL at run time.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl libssl3 libsasl2-2 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --user-group --uid 10001 --create-home --home-dir /var/lib/switchyard switchyard
COPY --from=build /out/switchyard /usr/local/bin/switchyard
USER switchyard
WORKDIR /var/lib/switchyard
# In a container: data in the volume below, listen on every interface (publish the port on the
# host's loopback unless it must be public), JSON log lines for the log collector.
ENV SWITCHYARD__DATA_DIR=/var/lib/switchyard \
    SWITCHYARD__SERVER__LISTEN=0.0.0.0:8080 \
    SWITCHYARD__TELEMETRY__LOG_FORMAT=json
VOLUME ["/var/lib/switchyard"]
EXPOSE 8080
# SIGTERM starts the graceful drain (server.shutdown_grace_ms).
STOPSIGNAL SIGTERM
ENTRYPOINT ["switchyard"]
CMD ["serve"]
