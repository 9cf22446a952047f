#!/bin/sh
# posebowl's in-sandbox entrypoint, in the order of the platform's: refuse to run when a network
# is reachable, check that the data is mounted, list the submission, run `sh main.sh` from the
# unzipped submission, then report the processes main.sh left running (they are killed when this
# script exits). Its own lines start with "posebowl-entrypoint:" so the host can tell them from
# the submission's; "FATAL" lines (exit 86, before main.sh starts) mean the sandbox is broken.
# Usage: sh entrypoint.sh [--allow-network] [COMMAND...]   (default command: sh main.sh)
#
# Standalone, as the official image's entrypoint (the runtime image run by plain `docker run`
# with the submission folder mounted): when there is no main.sh here but
# /code_execution/submission/submission.zip exists, it unzips that here first (refusing a zip
# without main.sh at its root) and copies all its output to /code_execution/submission/log.txt.
# `posebowl run` unzips (safely) and logs on the host, so this never happens under it.

say() { echo "posebowl-entrypoint: $*"; }
fatal() { say "FATAL $*"; exit 86; }

sub=/code_execution/submission
standalone=no
if [ $# -eq 0 ] && [ ! -e main.sh ] && [ -f "$sub/submission.zip" ]; then standalone=yes; fi
if [ "$standalone" = yes ] && [ -z "${POSEBOWL_ENTRYPOINT_LOGGED:-}" ]; then
  # run this script again with its output teed to log.txt, keeping its exit code
  status=$(mktemp) || fatal "cannot create a temporary file"
  { POSEBOWL_ENTRYPOINT_LOGGED=1 sh "$0"; echo $? > "$status"; } 2>&1 | tee "$sub/log.txt"
  rc=$(cat "$status")
  rm -f "$status"
  exit "${rc:-86}"
fi

allow_network=no
if [ "${1:-}" = "--allow-network" ]; then allow_network=yes; shift; fi

check_offline() {
  # Only the loopback interface may exist: with no other interface, nothing can be reached.
  [ -r /proc/net/dev ] || fatal "cannot read /proc/net/dev to check the network"
  while IFS=: read -r name rest; do
    [ -n "$rest" ] || continue  # the two header lines have no ':'
    set -- $name  # trims the padding (inside a function: the script's arguments are kept)
    [ "$1" = lo ] || fatal "the network interface '$1' exists: the sandbox is not offline"
  done < /proc/net/dev
  say "network: none (loopback only)"
}
[ "$allow_network" = yes ] || check_offline

data=/code_execution/data
[ -f "$data/submission_format.csv" ] || fatal "$data/submission_format.csv is not mounted"
[ -d "$data/images" ] || fatal "$data/images is not mounted"
say "data: $data mounted read-only"

if [ "$standalone" = yes ]; then
  say "unzipping $sub/submission.zip into $PWD"
  python - "$sub/submission.zip" <<'EOF' || exit 1
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    if "main.sh" not in z.namelist():
        sys.exit("posebowl-entrypoint: ERROR main.sh is not at the root of submission.zip")
    z.extractall(".")  # drops absolute and ".." parts of names; creates no symlinks
EOF
fi

if [ $# -eq 0 ]; then
  [ -f main.sh ] || fatal "main.sh is missing from $PWD"
  say "contents of $PWD:"
  ls -la
  set -- sh main.sh
fi

count_others() {  # n = how many processes but the init and this script are left (no subshell)
  n=0
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    [ "$p" = 1 ] || [ "$p" = "$$" ] || n=$((n + 1))
  done
}

# The time limit's polite SIGTERM reaches every process at once. This script must outlive
# main.sh's processes, or its exit would end the sandbox (and them) before they can act on it:
# it notes the signal, then waits for them (the host sends SIGKILL after the grace period).
# main.sh runs in a Landlock domain of its own (confine.py): it cannot attach to, read the
# environment of, or signal the processes it did not start. Without Python, or without Landlock,
# it runs unconfined and the host reports that.
confine=$(dirname "$0")/confine.py
py=
for candidate in python3 python; do
  if command -v "$candidate" >/dev/null 2>&1; then py=$candidate; break; fi
done
terminated=no
trap 'terminated=yes' TERM
# The docker engine (POSEBOWL_HOLD_STDIN=1) keeps its stdin pipe open on fd 3: see the end.
hold=no
if [ "${POSEBOWL_HOLD_STDIN:-}" = 1 ] && [ "$standalone" = no ]; then
  hold=yes
  exec 3<&0 </dev/null
fi
say "running: $*"
if [ -n "$py" ] && [ -f "$confine" ]; then
  "$py" -I -S "$confine" "$@" 3<&-
else
  say "confinement none (no python in the sandbox)"
  "$@" 3<&-
fi
rc=$?
if [ "$terminated" = yes ] && [ "$standalone" = no ]; then
  count_others
  while [ "$n" -gt 0 ]; do sleep 0.1; count_others; done
fi

n=0
# (standalone, the tee and the shells around this one are not left-overs: nothing to count)
[ "$standalone" = yes ] || count_others
if [ "$n" -gt 0 ]; then
  say "background-processes $n (left running by the submission; killed now)"
fi
say "exit-code $rc"
# The container (and with it its cgroup) ends with this script: wait for the host's go, a line
# or the end of the pipe, so that it reads the final peak memory, CPU time and pids count first.
if [ "$hold" = yes ]; then read -r _ <&3 || true; fi
exit "$rc"
