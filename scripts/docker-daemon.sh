#!/usr/bin/env bash
# A Docker daemon for the tests: start one when none answers, stop only what this script started.
#
#   scripts/docker-daemon.sh start    a daemon answers `docker info` afterwards, or exit 2 with why
#   scripts/docker-daemon.sh stop     stop the daemon this script started (nothing else), once no
#                                     other holder needs it and no container runs
#   scripts/docker-daemon.sh status   say whether a daemon answers, who started it, and why the
#                                     last start failed (the tests quote this in their skip reason)
#
# `start` is quick when a daemon already answers (one `docker info`; it never starts a second
# one). Otherwise, as root, it installs Debian's docker.io when dockerd is missing
# (POSEBOWL_DOCKERD_INSTALL=0: never), runs `dockerd` in its own session with its log in the state
# folder, waits until `docker info` answers (POSEBOWL_DOCKERD_WAIT_S, default 60) and writes a pid
# file. Not root and no daemon: it says how to start one and exits 2 (the docker tests then skip
# and say so).
#
# Holders: every `start` records a holder (POSEBOWL_DOCKERD_HOLDER, default: the calling process),
# `stop` removes it. Only what was started is stopped: the `start` that started dockerd owes its
# stop; a `stop` by a holder that owes nothing (it found a daemon answering) leaves it running.
# A holder that owes the stop while other live holders remain passes the debt on to them, and the
# last of them stops it: two test runs on one machine cannot stop the daemon under each other,
# and a daemon someone else started (systemd, Docker Desktop, a person) is never stopped.
# `stop --force` stops the daemon this script started, whoever holds it.
#
# State (pid file, holders, dockerd.log, the last failure): POSEBOWL_DOCKERD_STATE, default
# ${TMPDIR:-/tmp}/posebowl-dockerd-<uid>. Exit codes: 0 done, 2 no daemon can be had, 64 usage.
set -uo pipefail

STATE=${POSEBOWL_DOCKERD_STATE:-${TMPDIR:-/tmp}/posebowl-dockerd-$(id -u)}
PIDFILE=$STATE/dockerd.pid  # "PID START_TIME" of the dockerd this script started
LOG=$STATE/dockerd.log
WHY=$STATE/why-not          # the last reason no daemon could be started
HOLDERS=$STATE/holders
OWED=$STATE/owed            # the holders that must stop the daemon (the one that started it)
WAIT_S=${POSEBOWL_DOCKERD_WAIT_S:-60}
HOLDER=${POSEBOWL_DOCKERD_HOLDER:-$PPID}

say() { echo "docker-daemon: $*"; }
fail() {  # remember why, say it, exit 2
  mkdir -p "$STATE" && printf '%s\n' "$*" > "$WHY"
  say "$*" >&2
  exit 2
}

answers() {  # a daemon answers on the default socket (or DOCKER_HOST)
  command -v docker >/dev/null && timeout 20 docker info --format '{{.ServerVersion}}' \
    >/dev/null 2>&1
}

start_time() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null; }  # clock ticks after boot

ours() {  # prints the pid of the live dockerd this script started; false when there is none
  [ -f "$PIDFILE" ] || return 1
  local pid start
  read -r pid start < "$PIDFILE" || return 1
  [ -n "$pid" ] && [ "$(start_time "$pid")" = "$start" ] \
    && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] || return 1
  echo "$pid"
}

add_holder() { mkdir -p "$HOLDERS" && start_time "$HOLDER" > "$HOLDERS/$HOLDER"; }
owes() { [ -f "$OWED" ] && grep -qx "$HOLDER" "$OWED"; }

live_holders() {  # prints the holders whose process still runs; forgets the others
  local f h
  for f in "$HOLDERS"/*; do
    [ -e "$f" ] || continue
    h=${f##*/}
    if [ -d "/proc/$h" ] && [ "$(start_time "$h")" = "$(cat "$f")" ]; then echo "$h"
    else rm -f "$f"; fi
  done
}

install_dockerd() {
  [ "${POSEBOWL_DOCKERD_INSTALL:-1}" = 1 ] \
    || fail "dockerd is not installed (and POSEBOWL_DOCKERD_INSTALL=0 forbids installing it)."
  command -v apt-get >/dev/null \
    || fail "dockerd is not installed and this is not a Debian/Ubuntu system: install Docker."
  say "installing Debian's docker.io (apt-get) ..."
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io; } \
    > "$STATE/apt.log" 2>&1 \
    || fail "apt-get install docker.io failed: $(tail -n 2 "$STATE/apt.log" | tr '\n' ' ')"
}

start() {
  mkdir -p "$STATE"
  if answers; then
    rm -f "$WHY"
    add_holder
    if pid=$(ours); then say "running (started by this script, pid $pid)"
    else say "a Docker daemon already answers (not started by this script: left alone)"; fi
    return 0
  fi
  if pid=$(ours); then  # ours, but not answering (yet): give it the wait below
    say "dockerd (pid $pid, started by this script) does not answer yet; waiting"
  else
    [ "$(id -u)" = 0 ] || fail "no Docker daemon answers and only root can start dockerd \
here; start Docker (sudo systemctl start docker, or Docker Desktop) or run as root."
    command -v dockerd >/dev/null || install_dockerd
    command -v dockerd >/dev/null || fail "dockerd is still missing after installing docker.io."
    command -v docker >/dev/null || fail "dockerd is installed but the docker command is not."
    local t0=$SECONDS
    say "starting dockerd (log: $LOG)"
    # its own session: a Ctrl-C to the test run must not reach the daemon
    setsid dockerd >> "$LOG" 2>&1 < /dev/null &
    pid=$!
    sleep 0.2
    echo "$pid $(start_time "$pid")" > "$PIDFILE"
  fi
  local deadline=$((SECONDS + WAIT_S))
  until answers; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PIDFILE"
      fail "dockerd exited while starting: $(tail -n 3 "$LOG" | tr '\n' ' ')"
    fi
    [ $SECONDS -lt $deadline ] \
      || fail "dockerd (pid $pid) did not answer \`docker info\` within ${WAIT_S} s; see $LOG"
    sleep 0.2
  done
  rm -f "$WHY"
  add_holder
  echo "$HOLDER" >> "$OWED"  # this start started it (or waited for ours): its stop is owed
  say "dockerd answers (pid $pid, $((SECONDS - ${t0:-SECONDS})) s)"
}

stop() {
  local force=${1:-}
  rm -f "$HOLDERS/$HOLDER"
  local pid
  if ! pid=$(ours); then
    rm -f "$PIDFILE" "$OWED"
    say "no daemon started by this script runs: nothing to stop"
    return 0
  fi
  if [ "$force" != --force ]; then
    if ! owes; then
      say "dockerd (pid $pid) was running before this holder's start -- left running"
      return 0
    fi
    local others
    others=$(live_holders | tr '\n' ' ')
    if [ -n "$others" ]; then
      live_holders > "$OWED"  # the last of them stops it
      say "dockerd (pid $pid) is still held by: $others-- left running (they stop it)"
      return 0
    fi
    if [ -n "$(timeout 20 docker ps -q 2>/dev/null)" ]; then
      say "dockerd (pid $pid) still runs containers -- left running (stop --force stops it)"
      return 0
    fi
  fi
  say "stopping dockerd (pid $pid)"
  kill -TERM "$pid"
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    say "dockerd did not stop within 30 s: SIGKILL"
    kill -KILL "$pid"
  fi
  rm -f "$PIDFILE" "$OWED"
  rm -rf "$HOLDERS"
}

status() {
  local pid
  if answers; then
    if pid=$(ours); then say "running (started by this script, pid $pid; log: $LOG)"
    else say "running (not started by this script)"; fi
    return 0
  fi
  if pid=$(ours); then say "dockerd (pid $pid, started by this script) does not answer"
  else say "no Docker daemon answers"; fi
  [ -f "$WHY" ] && say "last start failed: $(cat "$WHY")"
  return 2
}

case "${1:-}" in
  start) start ;;
  stop) stop "${2:-}" ;;
  status) status ;;
  *) echo "usage: $0 start|stop [--force]|status" >&2; exit 64 ;;
esac
