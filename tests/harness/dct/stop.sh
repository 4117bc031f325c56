#!/usr/bin/env bash
# Usage: stop.sh WORKDIR
#
# Stops what start-dockerd.sh and start-registry.sh recorded in WORKDIR, and
# nothing else: the PIDs in WORKDIR/dockerd.pid and WORKDIR/registry.pid. A
# PID is signalled only while it is still the process that was started: its
# command name must match and its command line must mention WORKDIR, so a
# recycled PID is never touched. SIGTERM first; SIGKILL only if the process
# is still there after the grace period (DCT_STOP_GRACE seconds, default 20).
# If the engine had to be killed, the containerd it managed (its command line
# also names WORKDIR) is stopped the same way. Mounts left under WORKDIR by a
# dead engine are unmounted at the end.
#
# Exit status 0 when everything recorded is gone and nothing is mounted under
# WORKDIR any more; 1 otherwise. Safe to run more than once.
set -uo pipefail

say() { echo "stop: $*" >&2; }
[ $# -eq 1 ] || { say "usage: stop.sh WORKDIR"; exit 2; }
[ -d "$1" ] || { say "$1: no such directory"; exit 0; }
WD=$(cd "$1" && pwd -P)
GRACE=${DCT_STOP_GRACE:-20}
status=0

is_ours() { # PID COMM
  local pid=$1 want=$2 comm
  comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
  [ "$comm" = "$want" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$WD/"
}

terminate() { # PID COMM
  local pid=$1 want=$2
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 $((GRACE * 4))); do
    kill -0 "$pid" 2>/dev/null || { say "stopped $want (pid $pid)"; return 0; }
    sleep 0.25
  done
  if is_ours "$pid" "$want"; then
    say "$want (pid $pid) ignored SIGTERM for ${GRACE}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.25; done
    say "$want (pid $pid) is still there"
    return 1
  fi
}

stop_recorded() { # PIDFILE COMM...
  local file=$1 pid comm
  shift
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  if ! [[ "$pid" =~ ^[0-9]+$ ]] || ! kill -0 "$pid" 2>/dev/null; then
    rm -f "$file"
    return 0
  fi
  for comm in "$@"; do
    if is_ours "$pid" "$comm"; then
      terminate "$pid" "$comm" || return 1
      rm -f "$file"
      return 0
    fi
  done
  say "pid $pid in $file is not a $* started for $WD ($(cat "/proc/$pid/comm" 2>/dev/null)); left alone"
  rm -f "$file"
  return 0
}

engine_pid=$(cat "$WD/dockerd.pid" 2>/dev/null || true)
stop_recorded "$WD/dockerd.pid" dockerd || status=1

# dockerd stops the containerd it manages on SIGTERM; after a SIGKILL it may not have.
for f in "$WD/exec/containerd/containerd.pid" "$WD/exec/containerd/daemon/containerd.pid"; do
  stop_recorded "$f" containerd || status=1
done

stop_recorded "$WD/registry.pid" docker-registry registry || status=1

# Mounts a crashed engine left behind (data-root bind mount, overlay layers,
# netns files), deepest first. Only paths below WORKDIR are considered.
if [ -z "$engine_pid" ] || ! kill -0 "$engine_pid" 2>/dev/null; then
  awk -v p="$WD/" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
    while read -r m; do
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || say "could not unmount $m"
    done
fi
if awk -v p="$WD/" 'index($5, p) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
  say "still mounted under $WD:"
  awk -v p="$WD/" 'index($5, p) == 1 { print "  " $5 }' /proc/self/mountinfo >&2
  status=1
fi
exit $status
