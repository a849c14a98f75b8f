# syntax=docker/dockerfile:1
#
# The Countersign gate as a container image: built with the Rust toolchain,
# run from a distroless image (glibc, CA certificates, no shell, no package
# manager) as a non-root user, with its data in a volume.
#
#   docker build -t countersign .
#   docker run -d --name countersign -p 127.0.0.1:8080:8080 -v countersign-data:/data countersign
#
# README "Running in a container" has the first admin key, your own
# policies and a configuration file. scripts/docker-check.sh lints this
# file and builds and runs the binary exactly as the stages below do.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
COPY . .
# The release profile: fat LTO, no debug info, symbols stripped.
# docker-check: the next cargo command is run verbatim by scripts/docker-check.sh
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p countersign \
    && install -D -m 0755 target/release/countersign /out/countersign \
    && mkdir -p /out/data

FROM gcr.io/distroless/cc-debian12:nonroot
# The user and group `nonroot` (65532) of the base image.
USER 65532:65532
WORKDIR /srv/countersign
COPY --from=build /out/countersign /usr/local/bin/countersign
# The example policies as workspace `default`; mount your own over them.
COPY --chown=65532:65532 policies ./policies
# An empty data directory owned by the gate's user: a new named volume
# starts as a copy of it, so the gate can write there.
COPY --from=build --chown=65532:65532 /out/data /data
# Listen on every interface of the container; links in approval requests
# use COUNTERSIGN_PUBLIC_URL (set it to the URL people reach the gate at).
ENV COUNTERSIGN_LISTEN=0.0.0.0:8080 \
    COUNTERSIGN_DATA_DIR=/data \
    COUNTERSIGN_PUBLIC_URL=http://127.0.0.1:8080
VOLUME ["/data"]
EXPOSE 8080
# The binary asks its own /readyz (no curl in this image).
HEALTHCHECK --interval=30s --timeout=6s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/countersign", "health"]
ENTRYPOINT ["/usr/local/bin/countersign"]
CMD ["serve"]
