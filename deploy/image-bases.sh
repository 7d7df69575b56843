#!/usr/bin/env bash
# Makes, on this machine, the two base images deploy/Dockerfile names, for
# hosts where no registry is reachable (these machines reach Debian's
# mirror and crates.io, not Docker Hub). deploy/image-check.sh calls it;
# with a registry, skip it: docker or podman pull the real ones.
#
# - debian:bookworm-slim: a minimal Debian 12 made by debootstrap
#   (--variant=minbase), with the official image's apt sources (bookworm,
#   -updates, -security);
# - rust:<RUST_VERSION>-slim-bookworm: that root plus what the official
#   rust slim image adds (ca-certificates, gcc, libc6-dev) and this
#   machine's own Rust toolchain (rustup's downloads are not reachable
#   here), at the official image's paths (CARGO_HOME=/usr/local/cargo, on
#   PATH). It has no rustup; the Dockerfile only runs cargo. It also trusts
#   the CAs this host adds to its own trust store (/usr/local/share/
#   ca-certificates): where crates.io is reached through an intercepting
#   proxy, as here, cargo inside the build needs that CA; a builder on the
#   open internet needs nothing of the kind.
#
# Idempotent: an image already there is kept (the builder is made again
# when the host's rustc changes). Needs root, podman and debootstrap
# (deploy/image-check.sh installs them), and CONTAINERS_CONF set by it.
# Usage: deploy/image-bases.sh WORK_DIR
set -euo pipefail
cd "$(dirname "$0")/.."

work=${1:?usage: deploy/image-bases.sh WORK_DIR}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
rust_version=$(sed -n 's/^ARG RUST_VERSION=//p' deploy/Dockerfile)
base=docker.io/library/debian:bookworm-slim
builder=docker.io/library/rust:${rust_version}-slim-bookworm

# The Debian root, kept between runs (a second import needs no download);
# .complete marks a debootstrap that finished.
rootfs=$work/rootfs
if ! podman image exists "$base"; then
  if [ ! -e "$rootfs/.complete" ]; then
    rm -rf "$rootfs"
    echo "debootstrap bookworm (minbase) into $rootfs" >&2
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
      || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
    rm -f "$rootfs/etc/apt/sources.list"
    cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    # No downloaded package lists or caches in the image, as in the official one.
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
    touch "$rootfs/.complete"
  fi
  echo "importing $rootfs as $base" >&2
  tar -C "$rootfs" --exclude=./.complete -c . \
    | podman import --quiet --change 'CMD ["bash"]' - "$base" >/dev/null
fi

# The builder: made again when the host's toolchain is not the one it holds.
host_rustc=$(rustc --version)
case "$host_rustc" in
  "rustc $rust_version".*) ;;
  *) echo "deploy/Dockerfile wants Rust $rust_version; this host has $host_rustc" >&2; exit 1 ;;
esac
held=$(podman image inspect --format '{{index .Config.Labels "ledgerhook.rustc"}}' "$builder" 2>/dev/null || true)
if [ "$held" != "$host_rustc" ]; then
  context=$work/builder
  rm -rf "$context"
  mkdir -p "$context/toolchain" "$context/extra-ca"
  sysroot=$(rustc --print sysroot)
  # The compiler, cargo and the standard library; not the documentation.
  for part in bin lib libexec etc; do
    [ ! -e "$sysroot/$part" ] || cp -a "$sysroot/$part" "$context/toolchain/"
  done
  cp /usr/local/share/ca-certificates/*.crt "$context/extra-ca/" 2>/dev/null || true
  cat >"$context/Containerfile" <<EOF
FROM $base
RUN apt-get update \\
    && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev \\
    && rm -rf /var/lib/apt/lists/*
COPY extra-ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates >/dev/null
COPY toolchain/ /usr/local/rust/
ENV CARGO_HOME=/usr/local/cargo \\
    PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    RUST_VERSION=$rust_version
RUN mkdir -p /usr/local/cargo/bin && cargo --version && rustc --version
LABEL ledgerhook.rustc="$host_rustc"
EOF
  echo "building $builder from $base and $host_rustc" >&2
  podman build --pull=never -t "$builder" "$context" >"$work/builder.log" 2>&1 \
    || { tail -20 "$work/builder.log" >&2; exit 1; }
  rm -rf "$context"
fi
echo "base images: $base, $builder" >&2
