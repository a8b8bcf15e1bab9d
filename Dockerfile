# Multi-stage build of gatehouse. Dependencies are built in their own layer (from Cargo.toml and
# Cargo.lock only), so code changes rebuild just the crate.
FROM rust:1-bookworm AS builder
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
# A throwaway crate with the real manifest: compiles and caches every dependency.
RUN mkdir -p src tools tests/api \
    && touch tests/api/main.rs \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src tools
COPY src ./src
COPY tools ./tools
# Make sure cargo sees the real sources as newer than the cached dummy build.
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin gatehouse

FROM debian:bookworm-slim AS runtime
# CA certificates for the HTTPS key set fetch; nothing else.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /app gatehouse
WORKDIR /app
COPY --from=builder /src/target/release/gatehouse /usr/local/bin/gatehouse
COPY config ./config
USER gatehouse
ENV APP_ENV=production PORT=8080 RUST_LOG=info
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s CMD curl -fs "http://127.0.0.1:${PORT}/health" || exit 1
ENTRYPOINT ["/usr/local/bin/gatehouse"]
