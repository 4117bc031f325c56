#!/usr/bin/env bash
# Usage: start-registry.sh WORKDIR PORT
#
# Runs Debian's docker-registry (distribution 2.8) for the DCT suite: plain
# HTTP, no auth, filesystem storage in WORKDIR/registry/storage, listening on
# 127.0.0.1:PORT only (PORT may also be given as 127.0.0.1:PORT). The Docker
# engine talks plain HTTP to it without any configuration because loopback
# registries count as insecure registries by default.
#
# stdout: one line, the listen address (127.0.0.1:PORT). Running it again
# while the recorded registry answers just prints that line again.
#
# Env: DOCKER_REGISTRY_BIN  registry binary (default: docker-registry, else registry)
#
# Stop with stop.sh WORKDIR. The PID is in WORKDIR/registry.pid.
set -euo pipefail

say() { echo "start-registry: $*" >&2; }
[ $# -eq 2 ] || { say "usage: start-registry.sh WORKDIR PORT"; exit 2; }
case "$2" in
  127.0.0.1:*) PORT=${2#127.0.0.1:} ;;
  *) PORT=$2 ;;
esac
[[ "$PORT" =~ ^[0-9]+$ ]] && [ "$PORT" -ge 1 ] && [ "$PORT" -le 65535 ] ||
  { say "PORT must be a TCP port number (got '$2')"; exit 2; }
ADDR="127.0.0.1:$PORT"
mkdir -p "$1"
WD=$(cd "$1" && pwd -P)
DIR="$WD/registry"
PIDFILE="$WD/registry.pid"
LOG="$DIR/registry.log"

serving() { curl -fsS -o /dev/null --max-time 3 "http://$ADDR/v2/" 2>/dev/null; }
recorded_alive() { [ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

if recorded_alive && serving; then
  say "already up (pid $(cat "$PIDFILE"))"
  echo "$ADDR"
  exit 0
fi
if recorded_alive; then
  say "pid $(cat "$PIDFILE") is recorded but $ADDR does not answer; run stop.sh $WD first"
  exit 1
fi
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  say "something else already listens on $ADDR"
  exit 1
fi

BIN=${DOCKER_REGISTRY_BIN:-$(command -v docker-registry || command -v registry || true)}
[ -n "$BIN" ] || { say "no registry binary (Debian: apt-get install docker-registry)"; exit 1; }

mkdir -p "$DIR/storage"
# No debug listener, no notifications, no proxying: one HTTP listener on loopback.
cat >"$DIR/config.yml" <<YAML
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $DIR/storage
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: $ADDR
  secret: dct-harness-$(date +%s)-$$
YAML

setsid "$BIN" serve "$DIR/config.yml" >>"$LOG" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$PIDFILE"
for _ in $(seq 1 60); do
  if serving; then
    say "up on $ADDR (pid $pid, log $LOG)"
    echo "$ADDR"
    exit 0
  fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.25
done
say "registry did not answer on $ADDR; log tail:"
tail -n 8 "$LOG" >&2 || true
kill "$pid" 2>/dev/null || true
rm -f "$PIDFILE"
exit 1
