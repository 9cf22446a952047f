#!/usr/bin/env bash
# What the docker tests of `make test` (and .ci/run) need, made when missing: a Docker daemon
# (scripts/docker-daemon.sh start: as root with none running, Debian's docker.io is installed and
# dockerd started), the stand-in base image (scripts/docker-base.sh: Debian packages, no
# registry) and the slim runtime's image built on it offline (posebowl runtime build --engine
# docker), under a name of its own: an image of yours is never rebuilt by the tests.
#
#   scripts/docker-test-setup.sh IMAGE [BASE]     (POSEBOWL: the posebowl command to use)
#
# The caller holds the daemon (POSEBOWL_DOCKERD_HOLDER, default: the calling shell) and calls
# `scripts/docker-daemon.sh stop` from the same shell when the tests are done: only a daemon this
# setup started is stopped then. Exit codes: 0 ready, or no daemon can be had here (said; the
# docker tests then skip with the reason); 1 a daemon answers but the base or the image could
# not be made (a real failure).
set -uo pipefail

IMAGE=${1:?usage: $0 IMAGE [BASE]}
BASE=${2:-posebowl-base:bookworm-py3.11}
POSEBOWL=${POSEBOWL:-posebowl}
here=$(cd "$(dirname "$0")" && pwd)
export POSEBOWL_DOCKERD_HOLDER=${POSEBOWL_DOCKERD_HOLDER:-$PPID}
say() { echo "docker-test-setup: $*"; }

t0=$SECONDS
if ! "$here/docker-daemon.sh" start; then
  say "no Docker daemon here (above: why): the docker tests will skip and say so"
  exit 0
fi
"$here/docker-base.sh" "$BASE" || { say "the stand-in base $BASE could not be made"; exit 1; }
"$POSEBOWL" runtime build --engine docker --runtime slim --image "$IMAGE" --base-image "$BASE" \
  || { say "the test image $IMAGE could not be built"; exit 1; }
say "ready in $((SECONDS - t0)) s: $IMAGE on $BASE"
