# syntax=docker/dockerfile:1
# Release image: the operator binary only (no simulator, emulator or demo: --no-default-features).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked --no-default-features --bin t2t-operator

# distroless/cc has glibc and CA certificates and nothing else; it runs as a non-root user.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/t2t-operator /usr/local/bin/t2t-operator
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/t2t-operator"]
CMD ["run"]
