#!/bin/sh
# posebowl's in-sandbox entrypoint, in the order of the platform's: refuse to run when a network
# is reachable, check that the data is mounted, list the submission, run `sh main.sh` from the
# unzipped submission, then report the processes main.sh left running (they are killed when this
# script exits). Its own lines start with "posebowl-entrypoint:" so the host can tell them from
# the submission's; "FATAL" lines (exit 86, before main.sh starts) mean the sandbox is broken.
# Usage: sh entrypoint.sh [--allow-network] [COMMAND...]   (default command: sh main.sh)

say() { echo "posebowl-entrypoint: $*"; }
fatal() { say "FATAL $*"; exit 86; }

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

if [ $# -eq 0 ]; then
  [ -f main.sh ] || fatal "main.sh is missing from $PWD"
  say "contents of $PWD:"
  ls -la
  set -- sh main.sh
fi

say "running: $*"
"$@"
rc=$?

n=0
for d in /proc/[0-9]*; do
  p=${d#/proc/}
  [ "$p" = 1 ] || [ "$p" = "$$" ] || n=$((n + 1))
done
if [ "$n" -gt 0 ]; then
  say "background-processes $n (left running by the submission; killed now)"
fi
say "exit-code $rc"
exit "$rc"
