#!/usr/bin/env bash
# Usage: start-dockerd.sh WORKDIR
#
# Runs a private Docker engine (Debian docker.io's dockerd) for the DCT suite.
# Everything it owns lives under WORKDIR: data-root, exec-root (with the
# containerd it manages), pidfile, log and its only API endpoint, the unix
# socket WORKDIR/docker.sock. No TCP listener is opened.
#
# Host networking is left alone: no bridge (--bridge=none), no iptables or
# ip6tables rules, no IP forwarding or masquerading, no userland proxy. The
# engine only stores, pushes and pulls images; it never runs a container. As a
# guard the script compares the host's interfaces and forwarding sysctls
# before and after the start, checks (with ss) that neither dockerd nor its
# containerd listens on a TCP or UDP port, and stops the engine otherwise.
#
# stdout: one line, the DOCKER_HOST value (unix://WORKDIR/docker.sock).
# Progress and errors go to stderr. Running it again while the recorded
# engine answers just prints that line again.
#
# WORKDIR must be short (it is meant to be under /tmp): unix socket paths are
# limited to 107 bytes and containerd's deepest socket is ~40 bytes below it.
#
# Env:
#   DOCKERD          dockerd binary (default: dockerd on PATH)
#   DOCKER           docker client for the readiness probe (default: docker)
#   DOCKERD_DRIVERS  storage drivers to try, in order (default: "overlay2 vfs")
#   DOCKERD_WAIT     seconds to wait for the engine per driver (default: 40)
#
# Stop with stop.sh WORKDIR. The engine's PID is in WORKDIR/dockerd.pid.
set -euo pipefail

say() { echo "start-dockerd: $*" >&2; }
[ $# -eq 1 ] || { say "usage: start-dockerd.sh WORKDIR"; exit 2; }
mkdir -p "$1"
WD=$(cd "$1" && pwd -P)
SOCK="$WD/docker.sock"
PIDFILE="$WD/dockerd.pid"
LOG="$WD/dockerd.log"
DOCKERD=${DOCKERD:-dockerd}
DOCKER=${DOCKER:-docker}
WAIT=${DOCKERD_WAIT:-40}

engine_answers() {
  DOCKER_HOST="unix://$SOCK" timeout 10 "$DOCKER" version --format '{{.Server.Version}}' >/dev/null 2>&1
}
recorded_alive() {
  [ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

if recorded_alive && engine_answers; then
  say "already up (pid $(cat "$PIDFILE"))"
  echo "unix://$SOCK"
  exit 0
fi
if recorded_alive; then
  say "pid $(cat "$PIDFILE") is recorded but the engine does not answer; run stop.sh $WD first"
  exit 1
fi

[ "$(id -u)" = 0 ] || { say "dockerd must run as root"; exit 1; }
command -v "$DOCKERD" >/dev/null 2>&1 || { say "no dockerd (Debian: apt-get install docker.io)"; exit 1; }
command -v "$DOCKER" >/dev/null 2>&1 || { say "no docker client ($DOCKER)"; exit 1; }
# deepest socket: $WD/exec/containerd/containerd.sock.ttrpc
if [ $((${#WD} + 40)) -gt 107 ]; then
  say "WORKDIR $WD is too long for unix sockets (keep it under ~65 bytes, e.g. mktemp -d /tmp/dct-XXXXXX)"
  exit 1
fi

# What the host's networking looks like now, to prove later that we left it so.
net_state() {
  printf 'ip_forward=%s\n' "$(cat /proc/sys/net/ipv4/ip_forward 2>/dev/null)"
  printf 'ipv6_forwarding=%s\n' "$(cat /proc/sys/net/ipv6/conf/all/forwarding 2>/dev/null)"
  printf 'links=%s\n' "$(ls /sys/class/net 2>/dev/null | tr '\n' ' ')"
}
net_before=$(net_state)

# An empty daemon.json of our own, so /etc/docker/daemon.json (which could
# turn networking features back on) is never read.
mkdir -p "$WD/data" "$WD/exec"
echo '{}' >"$WD/daemon.json"

unmount_leftovers() {
  # deepest first
  awk -v p="$WD/" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
    while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
}

stop_pid() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 80); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.25; done
  kill -KILL "$pid" 2>/dev/null || true
  sleep 0.5
}

for driver in ${DOCKERD_DRIVERS:-overlay2 vfs}; do
  rm -f "$SOCK" "$PIDFILE"
  say "starting dockerd with storage driver $driver (log $LOG)"
  setsid "$DOCKERD" \
    --config-file "$WD/daemon.json" \
    --data-root "$WD/data" \
    --exec-root "$WD/exec" \
    --pidfile "$PIDFILE" \
    --host "unix://$SOCK" \
    --storage-driver "$driver" \
    --bridge=none \
    --iptables=false \
    --ip6tables=false \
    --ip-forward=false \
    --ip-masq=false \
    --userland-proxy=false \
    >>"$LOG" 2>&1 </dev/null &
  pid=$!
  up=0
  for _ in $(seq 1 $((WAIT * 2))); do
    if engine_answers; then up=1; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if [ "$up" = 1 ]; then
    # dockerd writes its pidfile itself; it must name the process we launched
    if [ "$(cat "$PIDFILE" 2>/dev/null)" != "$pid" ] || [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != dockerd ]; then
      say "pidfile $PIDFILE does not name the dockerd we started (pid $pid); stopping it"
      stop_pid "$pid"
      rm -f "$PIDFILE"
      unmount_leftovers
      exit 1
    fi
    # the engine and the containerd it manages must not listen on any TCP/UDP port
    if command -v ss >/dev/null 2>&1; then
      inet=""
      for p in "$pid" $(pgrep -P "$pid" 2>/dev/null); do
        inet+=$(ss -Hltunp 2>/dev/null | grep -F "pid=$p," || true)
      done
      if [ -n "$inet" ]; then
        say "the engine listens on the network; stopping it:"
        echo "$inet" >&2
        stop_pid "$pid"
        rm -f "$PIDFILE"
        unmount_leftovers
        exit 1
      fi
    fi
    net_after=$(net_state)
    if [ "$net_before" != "$net_after" ]; then
      say "host networking changed while the engine started; stopping it"
      diff <(echo "$net_before") <(echo "$net_after") >&2 || true
      stop_pid "$pid"
      rm -f "$PIDFILE"
      unmount_leftovers
      exit 1
    fi
    say "up (pid $pid, storage driver $driver)"
    echo "unix://$SOCK"
    exit 0
  fi
  say "no answer with storage driver $driver; log tail:"
  tail -n 8 "$LOG" >&2 || true
  stop_pid "$pid"
  rm -f "$PIDFILE"
  unmount_leftovers
done
say "could not start dockerd"
exit 1
