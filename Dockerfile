# syntax=docker/dockerfile:1
#
# nodewatch container image.
#
#   docker build -t nodewatch .
#   docker run --rm -p 127.0.0.1:8545:8545 -p 127.0.0.1:9545:9545 \
#     -v "$PWD/nodewatch.toml:/etc/nodewatch/nodewatch.toml:ro" nodewatch
#   docker run --rm nodewatch --upstream http://node:8545 --upstream https://provider/KEY
#
# - Build: the pinned Rust (Cargo.toml's rust-version), `cargo build --release --locked
#   --bins` over the workspace: the proxy (nodewatch, root package) and the exporter
#   (nodewatch-export, crates/export) with the HTTP client (crates/http) and the verification
#   (crates/verify: libsecp256k1 and the assembly keccak are built with the image's gcc) they share.
# - Run: distroless (glibc, CA-free: the TLS roots are compiled in), no shell, no package
#   manager, user 65532 (nonroot).
# - Configuration: a mounted file at /etc/nodewatch/nodewatch.toml (the default command),
#   NODEWATCH__SECTION__KEY environment variables, or flags after the image name.
# - Listens on 0.0.0.0 because this image says so (NODEWATCH__LISTEN, NODEWATCH__ADMIN_LISTEN);
#   nodewatch itself defaults to 127.0.0.1. Override them to narrow it (e.g. a sidecar's
#   JSON-RPC on 127.0.0.1:8545).
# - HEALTHCHECK: `nodewatch healthcheck` asks /healthz on the admin port it reads from
#   NODEWATCH__ADMIN_LISTEN; no curl needed.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# Every workspace member's manifest must be there for cargo to load the workspace (the test
# toolkit, crates/testkit, is a member too, though no binary links it).
COPY crates ./crates
# Cache mounts keep the registry and target/ between builds; the binaries are copied out in
# the same step because the cache is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bins \
 && mkdir -p /out \
 && find target/release -maxdepth 1 -type f -executable -name 'nodewatch*' -exec cp {} /out/ \; \
 && /out/nodewatch --version

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="nodewatch" \
      org.opencontainers.image.description="Health-checking JSON-RPC failover proxy for Ethereum ETL exports" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/ /usr/local/bin/
ENV NODEWATCH__LISTEN=0.0.0.0:8545 \
    NODEWATCH__ADMIN_LISTEN=0.0.0.0:9545 \
    RUST_LOG=info
USER 65532:65532
EXPOSE 8545 9545
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/nodewatch", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/nodewatch"]
CMD ["--config", "/etc/nodewatch/nodewatch.toml"]
