# drover in a container: `drover serve` as a sidecar (see README, "Container").
#
#   docker build -t drover .                  # from source (the `runtime` stage)
#   docker run -d -p 127.0.0.1:7070:7070 -e DROVER_TOKEN="$(head -c 32 /dev/urandom | base64)" \
#     -v drover-state:/var/lib/drover drover
#
# The image (VARIANT=slim, the default, 26 MB) is `FROM scratch` with
# drover and the files of a few Debian packages: sh (dash), bash,
# coreutils, findutils, grep, sed, awk (mawk), gzip, tar, glibc; no package
# manager.
# Your jobs' programs:
#
#   docker build --build-arg EXTRA_PACKAGES="jq curl ca-certificates" -t drover .
#                                 # Debian packages, copied in with their dependencies
#   docker build --build-arg VARIANT=debian -t drover:debian .
#                                 # all of RUNTIME_IMAGE (apt-get works: FROM drover:debian)
#
# With a drover built on the host (no Rust image needed; what
# scripts/test-container.sh does), the binary inside the build context:
#
#   cargo build --release --locked && mkdir -p dist && strip -o dist/drover target/release/drover
#   docker build --target runtime-prebuilt --build-arg DROVER_BIN=dist/drover -t drover .
#
# The host's binary must link against a glibc no newer than the runtime
# image's (Debian bookworm: 2.36).
#
# Stages are in this order so that the classic builder (which builds every
# stage up to --target, used or not) never needs the Rust image for
# runtime-prebuilt; BuildKit builds only the stages the target needs.

ARG BUILDER_IMAGE=rust:1-slim-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim
# slim: FROM scratch, the files of PACKAGES and EXTRA_PACKAGES; debian: all
# of RUNTIME_IMAGE.
ARG VARIANT=slim

# ---------------------------------------------------------------------------
# debian-base: the runtime image's Debian, its user and EXTRA_PACKAGES.
FROM ${RUNTIME_IMAGE} AS debian-base

# A fixed numeric uid/gid, so that Kubernetes' runAsNonRoot can verify it and
# a volume's owner is predictable. Its home is the state folder: the only
# place it can write besides /tmp.
ARG DROVER_UID=10001
RUN set -eu; \
    groupadd --system --gid "${DROVER_UID}" drover; \
    useradd --system --uid "${DROVER_UID}" --gid drover --home-dir /var/lib/drover \
      --no-create-home --shell /usr/sbin/nologin drover; \
    mkdir -p /var/lib/drover; \
    chown drover:drover /var/lib/drover; \
    chmod 0750 /var/lib/drover

# Debian packages your jobs need, e.g. "jq curl ca-certificates": installed
# here with apt-get (which needs the mirror), unless they all are already.
ARG EXTRA_PACKAGES=""
RUN set -eu; \
    for p in ${EXTRA_PACKAGES}; do \
      dpkg-query -W -f '${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' && continue; \
      apt-get update; \
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${EXTRA_PACKAGES}; \
      rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin; \
      break; \
    done

# ---------------------------------------------------------------------------
# slim-files: the slim image's files, in /rootfs (see
# scripts/container/slim-rootfs.sh): each package with its dependencies,
# without docs, man pages, locales or gconv modules.
FROM debian-base AS slim-files
# What jobs find: /bin/sh (dash), bash, coreutils, find and xargs, grep, sed,
# awk, gzip, tar; libgcc-s1 is drover's own (with glibc).
ARG PACKAGES="dash bash coreutils findutils grep sed mawk gzip tar libgcc-s1"
ARG EXTRA_PACKAGES=""
COPY scripts/container/slim-rootfs.sh /usr/local/sbin/slim-rootfs
RUN slim-rootfs /rootfs ${PACKAGES} ${EXTRA_PACKAGES}

# ---------------------------------------------------------------------------
# slim-base: those files and nothing else.
FROM scratch AS slim-base
COPY --from=slim-files /rootfs/ /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# ---------------------------------------------------------------------------
# runtime-base: everything of the runtime image but the binary, on
# slim-base or debian-base.
FROM ${VARIANT}-base AS runtime-base

# The store (drover.db) and every job's output. A named volume or a mount
# here keeps queued and finished jobs across restarts; docker copies this
# folder's owner into a new named volume.
VOLUME ["/var/lib/drover"]
WORKDIR /var/lib/drover
EXPOSE 7070

# drover drains on SIGTERM: /readyz answers 503, running jobs get
# drain_timeout (default 30 s), then TERM, kill_grace, KILL; queued jobs stay
# queued for the next start; exit 0. Give `docker stop -t` (or Kubernetes'
# terminationGracePeriodSeconds) more than drain_timeout + kill_grace.
STOPSIGNAL SIGTERM

# /healthz needs no token. `drover health` asks it (a plain HTTP GET: no
# curl, no shell); set DROVER_HEALTH_ADDR (e.g. 127.0.0.1:8080) if you change
# --listen's port. An answer other than 200, or none in 2 s, is unhealthy.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["drover", "health"]

ARG DROVER_UID=10001
USER ${DROVER_UID}:${DROVER_UID}
ENTRYPOINT ["drover"]
# A non-loopback address needs a token: $DROVER_TOKEN or --token-file FILE
# (without one drover exits 2). drover takes $DROVER_TOKEN out of its
# environment before any job starts.
CMD ["serve", "--listen", "0.0.0.0:7070", "--state-dir", "/var/lib/drover"]

# ---------------------------------------------------------------------------
# runtime-prebuilt: the runtime image with a drover from the build context,
# --build-arg DROVER_BIN=PATH (e.g. dist/drover; .dockerignore lets only that
# path in). Without it, a stub that says so: the classic builder (no BuildKit)
# builds this stage on its way to the default target, so it must build
# without a binary.
FROM runtime-base AS runtime-prebuilt
ARG DROVER_BIN=scripts/container/no-prebuilt-drover
COPY ${DROVER_BIN} /usr/local/bin/drover

# ---------------------------------------------------------------------------
# builder: drover from source.
FROM ${BUILDER_IMAGE} AS builder
WORKDIR /src
# The crates first (a layer that stays cached while only src/ changes).
COPY Cargo.toml Cargo.lock ./
RUN set -eu; \
    mkdir src; echo 'fn main() {}' > src/main.rs; touch src/lib.rs; \
    cargo fetch --locked; \
    rm -rf src
COPY src ./src
# No debug line tables and no symbols in the image's binary (50 MB -> 9 MB).
ENV CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_RELEASE_STRIP=symbols
RUN set -eu; \
    cargo build --release --locked --offline --bin drover; \
    install -m 0755 target/release/drover /usr/local/bin/drover; \
    /usr/local/bin/drover --version

# ---------------------------------------------------------------------------
# runtime (the default target): the runtime image with the drover built above.
FROM runtime-base AS runtime
COPY --from=builder /usr/local/bin/drover /usr/local/bin/drover
