#!/usr/bin/env bash
# dockerd.sh starts and stops the Docker engine kind's nodes run on, with
# hack/kind/runc as its default runtime: kind's nodes are privileged
# containers, and on a host whose capability bounding set lacks a
# capability (this project's CI VM lacks CAP_SYS_RESOURCE) runc refuses
# them unless that capability is removed from their specs.
#
#   hack/kind/dockerd.sh start   # installs Debian's docker.io if dockerd is missing
#   hack/kind/dockerd.sh stop    # stops the engine this script started
#
# start does nothing when an engine already answers with the wrapper as its
# default runtime, or with any runtime on a host that needs no wrapper (a
# laptop's Docker: every capability in the bounding set, or no /proc to
# tell); it fails when one answers without the wrapper on a host that needs
# it (stop that one first, or give it `--add-runtime kvsync=bin/kind/runc
# --default-runtime kvsync`). The engine's log is bin/kind/dockerd.log.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
state="$root/bin/kind"
pidfile="$state/dockerd.pid"
wrapper="$state/runc"

# needs_wrapper succeeds when this host's capability bounding set lacks a
# capability the kernel has, which a privileged container asks for.
needs_wrapper() {
  [ -r /proc/self/status ] && [ -r /proc/sys/kernel/cap_last_cap ] || return 1
  local bnd last
  bnd=$(awk '/^CapBnd:/{print $2}' /proc/self/status)
  last=$(cat /proc/sys/kernel/cap_last_cap)
  [ $(( 0x$bnd )) -ne $(( (1 << (last + 1)) - 1 )) ]
}

start() {
  mkdir -p "$state"
  if docker info >/dev/null 2>&1; then
    runtime=$(docker info --format '{{.DefaultRuntime}}')
    if [ "$runtime" = kvsync ] || ! needs_wrapper; then
      exit 0
    fi
    echo "a Docker engine runs with default runtime $runtime; stop it (or start it with --add-runtime kvsync=$wrapper --default-runtime kvsync) and run this again" >&2
    exit 1
  fi
  if ! command -v dockerd >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
  fi
  (cd "$root" && CGO_ENABLED=0 go build -o "$wrapper" ./hack/kind/runc)
  dockerd --add-runtime "kvsync=$wrapper" --default-runtime kvsync >"$state/dockerd.log" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 120); do
    docker info >/dev/null 2>&1 && exit 0
    kill -0 "$(cat "$pidfile")" 2>/dev/null || break
    sleep 0.5
  done
  echo "dockerd did not start; its log:" >&2
  tail -20 "$state/dockerd.log" >&2
  exit 1
}

stop() {
  [ -f "$pidfile" ] || exit 0
  pid=$(cat "$pidfile")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 60); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
