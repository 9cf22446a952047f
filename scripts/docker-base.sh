#!/usr/bin/env bash
# A stand-in for the runtime image's base (python:3.11.7-slim-bookworm) where no registry can be
# reached: a Debian bookworm root made with mmdebstrap from Debian's packages (deb.debian.org, or
# whatever mirror apt uses here), imported as a Docker image. Nothing comes from a registry.
#
#   scripts/docker-base.sh [NAME]      default NAME: posebowl-base:bookworm-py3.11
#   then: posebowl runtime build --engine docker --base-image NAME
#         (prototype: scripts/build-runtime-image.sh --base-image NAME)
#
# Does nothing when NAME already exists (FORCE=1 rebuilds it). As root it installs mmdebstrap with
# apt-get when missing. Takes ~20-60 s with a warm apt mirror.
#
# How it differs from the official base: Python 3.11.2 (Debian's) at /usr/bin/python3.11 instead
# of 3.11.7 at /usr/local/bin; `python` and `python3` are symlinks to it, as in the official image;
# Debian's pip (23.0) is there but marked externally managed (the runtime image never uses it: it
# installs the lock's own pip wheel into its venv). Both have glibc 2.36, libstdc++6, zlib1g and
# ca-certificates, which is all the lock's wheels need (tests/test_dockerfile.py checks that).
set -euo pipefail

NAME=${1:-posebowl-base:bookworm-py3.11}
SUITE=bookworm
PACKAGES=python3.11,python3.11-venv,python3-pip,ca-certificates,passwd
say() { echo "docker-base: $*"; }

command -v docker >/dev/null || { say "no docker command: install Docker first" >&2; exit 2; }
docker info >/dev/null 2>&1 \
  || { say "no Docker daemon answers: start one (scripts/docker-daemon.sh start)" >&2; exit 2; }
if [ "${FORCE:-0}" != 1 ] && docker image inspect "$NAME" >/dev/null 2>&1; then
  say "$NAME exists: nothing to do (FORCE=1 rebuilds it)"
  exit 0
fi
if ! command -v mmdebstrap >/dev/null; then
  [ "$(id -u)" = 0 ] \
    || { say "mmdebstrap is missing: sudo apt-get install -y mmdebstrap" >&2; exit 2; }
  say "installing mmdebstrap (apt-get)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null
fi

t0=$SECONDS
say "making $NAME from Debian $SUITE packages ($PACKAGES)"
# One pipe: mmdebstrap writes a tarball of the root to stdout, docker import reads it. The
# customize hook runs in the finished root: python/python3 as in the official image, and no apt
# lists or caches (they only make the image bigger). ($1 is the root: mmdebstrap expands it.)
# shellcheck disable=SC2016
mmdebstrap --quiet --variant=minbase --include="$PACKAGES" \
  --customize-hook='ln -sf python3.11 "$1/usr/bin/python"' \
  --customize-hook='ln -sf python3.11 "$1/usr/bin/python3"' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
  "$SUITE" - \
  | docker import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV LANG=C.UTF-8' \
      --change 'CMD ["python3"]' \
      --change "LABEL org.posebowl.stand-in-for=python:3.11.7-slim-bookworm" \
      --change "LABEL org.posebowl.made-by=scripts/docker-base.sh" \
      - "$NAME" >/dev/null
version=$(docker run --rm --network none "$NAME" python --version 2>&1)
size=$(docker image inspect --format '{{.Size}}' "$NAME")
say "made $NAME in $((SECONDS - t0)) s: $version, $((size / 1000000)) MB"
