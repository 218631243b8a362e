# syntax=docker/dockerfile:1
# Release image of t2t-operator: the operator binary only. The development stand-ins (tenant
# simulator, Kubernetes API emulator, demo) are left out with --no-default-features.
#
#   docker build -t t2t-operator:dev .
#
# The runtime image is distroless/cc (glibc, CA certificates, tzdata; no shell, no package
# manager) running as the distroless "nonroot" user 65532. The operator writes nothing to disk,
# so the pod runs with readOnlyRootFilesystem: true (deploy/ and charts/ set it).

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
WORKDIR /src
# Manifests first so that the dependency download is its own layer.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# Cache mounts keep the registry and the target dir between builds; the binary is copied out of
# the cached target dir inside the same RUN so it lands in the image layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --no-default-features --bin t2t-operator \
    && install -D -m 0755 target/release/t2t-operator /out/t2t-operator

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="t2t-operator" \
      org.opencontainers.image.description="Kubernetes operator for Microsoft 365 cross-tenant mailbox migrations"
COPY --from=build --chown=0:0 /out/t2t-operator /usr/local/bin/t2t-operator
# Numeric user so that runAsNonRoot can verify it without reading /etc/passwd.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/t2t-operator"]
CMD ["run", "--metrics-addr", "0.0.0.0:8080", "--log-format", "json"]
