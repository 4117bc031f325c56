#!/usr/bin/env bash
# Usage: dct-suite.sh NOTARY_URL CA_CERT REGISTRY
#
# Docker Content Trust, end to end: the stock Docker CLI with
# DOCKER_CONTENT_TRUST=1 against the notary server at NOTARY_URL, pushing to
# and pulling from REGISTRY through the engine at $DOCKER_HOST.
#
#   NOTARY_URL  https://HOST:PORT of the notary server (the CLI refuses http)
#   CA_CERT     PEM of the CA that issued the server's certificate
#   REGISTRY    host:port of the registry as image names spell it; a loopback
#               name (localhost:PORT) so the engine speaks plain HTTP to it
#
# Output: one line per check, "ok - WHAT" or "not ok - WHAT (WHY)" followed by
# "#"-prefixed log lines, comments start with "#", and the last line is always
# "N passed, M failed". Exit status 1 when anything failed.
#
# Three users, each a separate DOCKER_CONFIG under a temporary directory (the
# caller's ~/.docker is never read or written): "admin" (root and repository
# keys, generates alice's key), "bob" (only a key he made with openssl and
# loaded) and "fresh" (no keys, empty TUF cache: a first-time puller). Every
# run works on new repositories, so it can be repeated against a server that
# keeps its data.
#
# Env:
#   DOCKER_HOST        the engine (start-dockerd.sh prints it); required
#   DOCKER             Docker client with `docker trust` (default: docker)
#   SUITE_REPO         repository path (default suite/app-<run id>)
#   SUITE_SECURE_HOST  non-loopback registry host:port used only inside GUNs
#                      for the TLS checks (default 192.0.2.1:5000, never
#                      contacted); "" skips them. See README.md.
#   SUITE_CMD_TIMEOUT  seconds allowed per command (default 180)
#   SUITE_KEEP=1       keep the temporary directory with every command's log

# The check functions are only called through `check`, which shellcheck cannot follow.
# shellcheck disable=SC2317
set -uo pipefail

if [ $# -ne 3 ]; then
  echo "usage: dct-suite.sh NOTARY_URL CA_CERT REGISTRY" >&2
  echo "0 passed, 1 failed"
  exit 2
fi
NOTARY_URL=${1%/}
CA_CERT=$2
REG=$3
DOCKER=${DOCKER:-docker}
HARNESS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LIMIT=${SUITE_CMD_TIMEOUT:-180}
RUN_ID=${SUITE_RUN_ID:-$(date +%s)-$$}
REPO=${SUITE_REPO:-suite/app-$RUN_ID}
GUN="$REG/$REPO"
TEAM_GUN="$GUN-team"
SECURE_HOST=${SUITE_SECURE_HOST-192.0.2.1:5000}

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "ok - $1"; }
fail() { # WHAT WHY [LOG]
  FAILED=$((FAILED + 1))
  echo "not ok - $1 ($2)"
  if [ -n "${3:-}" ] && [ -f "$WORK/logs/$3.log" ]; then
    # the CLI repeats this warning for every read of a repository without releases
    grep -v 'Error getting targets/releases' "$WORK/logs/$3.log" | tail -n 15 | sed 's/^/#   /'
  fi
}
finish() {
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" = 0 ] && exit 0
  exit 1
}
# check WHAT LOG FUNC [ARGS...]: FUNC succeeds silently, or prints why it failed
check() {
  local what=$1 log=$2 why
  shift 2
  if why=$("$@" 2>&1); then pass "$what"; else fail "$what" "${why:-check failed}" "$log"; fi
}

for tool in curl jq openssl sha256sum timeout "$DOCKER"; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "# dct-suite: $tool not found"
    FAILED=1
    finish
  fi
done
if [ -z "${DOCKER_HOST:-}" ]; then
  echo "# dct-suite: DOCKER_HOST is not set (start-dockerd.sh prints it)"
  FAILED=1
  finish
fi
if [ ! -s "$CA_CERT" ]; then
  echo "# dct-suite: CA_CERT $CA_CERT is missing or empty"
  FAILED=1
  finish
fi
ENGINE=$DOCKER_HOST

WORK=$(mktemp -d /tmp/dct-suite.XXXXXX)
mkdir -p "$WORK/logs" "$WORK/keys"
NO_ENGINE="unix://$WORK/no-engine.sock" # nothing ever listens here
IMG1=""
IMG2=""
cleanup() {
  local img
  for img in "$IMG1" "$IMG2"; do
    [ -n "$img" ] && DOCKER_HOST=$ENGINE "$DOCKER" rmi -f "$img" >/dev/null 2>&1
  done
  if [ "${SUITE_KEEP:-0}" = 1 ]; then echo "# kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# The CLI trusts $DOCKER_CONFIG/tls/<host:port of the notary URL>/*.crt on top
# of the system roots.
NOTARY_HOSTPORT=${NOTARY_URL#*://}
NOTARY_HOSTPORT=${NOTARY_HOSTPORT%%/*}
new_user() { # NAME: a DOCKER_CONFIG that trusts CA_CERT for notary
  mkdir -p "$WORK/$1/tls/$NOTARY_HOSTPORT"
  cp "$CA_CERT" "$WORK/$1/tls/$NOTARY_HOSTPORT/ca.crt"
}
for u in admin bob fresh; do new_user "$u"; done
CA_FILE="$WORK/admin/tls/$NOTARY_HOSTPORT/ca.crt"

export DOCKER_CONTENT_TRUST=1
export DOCKER_CONTENT_TRUST_SERVER="$NOTARY_URL"
export DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE="root-pass-$RUN_ID"
export DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE="repo-pass-$RUN_ID"

# dk LOG [-u USER] [-n] [-i INPUT] [-e VAR=VALUE]... -- DOCKER-ARGS...
# Runs the Docker CLI as USER (default admin), against the engine or, with -n,
# against a socket nobody listens on. Sets RC and OUT (stdout+stderr); the
# command and its output are kept in $WORK/logs/LOG.log.
dk() {
  local log=$1 user=admin host=$ENGINE input="" envs=()
  shift
  while [ $# -gt 0 ]; do
    case "$1" in
      -u) user=$2; shift 2 ;;
      -n) host=$NO_ENGINE; shift ;;
      -i) input=$2; shift 2 ;;
      -e) envs+=("$2"); shift 2 ;;
      --) shift; break ;;
      *) break ;;
    esac
  done
  printf '$ [%s, DOCKER_HOST=%s] docker %s\n' "$user" "$host" "$*" >"$WORK/logs/$log.log"
  OUT=$(printf '%s' "$input" | env DOCKER_HOST="$host" DOCKER_CONFIG="$WORK/$user" "${envs[@]}" \
    timeout "$LIMIT" "$DOCKER" "$@" 2>&1)
  RC=$?
  printf '%s\n[exit %s]\n' "$OUT" "$RC" >>"$WORK/logs/$log.log"
}
# Trust data of a repository as `docker trust inspect` JSON (admin, no engine).
trust_json() {
  DOCKER_HOST=$NO_ENGINE DOCKER_CONFIG="$WORK/admin" timeout "$LIMIT" "$DOCKER" trust inspect "$1" 2>/dev/null
}
engine() { DOCKER_HOST=$ENGINE DOCKER_CONFIG="$WORK/admin" timeout "$LIMIT" "$DOCKER" "$@"; }
image_id() { engine image inspect --format '{{.Id}}' "$1" 2>/dev/null; }
forget() { engine rmi -f "$@" >/dev/null 2>&1 || true; }
# the digest the engine reported for TAG in the last command's push output
pushed_digest() { printf '%s\n' "$OUT" | sed -n "s/^$1: digest: sha256:\([0-9a-f]\{64\}\) size: .*/\1/p" | tail -n 1; }
# GET a notary path (below /v2/GUN/_trust/tuf/) into FILE; prints the HTTP code
tuf_get() { curl -sS --max-time 20 --cacert "$CA_CERT" -o "$3" -w '%{http_code}' "$NOTARY_URL/v2/$1/_trust/tuf/$2" 2>/dev/null; }

# Conditions used by the checks: silent on success, one reason on failure.
exit_is() { [ "$RC" = "$1" ] || { echo "exit status $RC, expected $1"; return 1; }; }
exit_nonzero() { [ "$RC" != 0 ] || { echo "exit status 0, expected a failure"; return 1; }; }
says() { printf '%s\n' "$OUT" | grep -qE -- "$1" || { echo "output lacks /$1/"; return 1; }; }
is_set() { [ -n "$1" ] || { echo "$2"; return 1; }; }
same() { [ "$1" = "$2" ] || { echo "$3: '$1' != '$2'"; return 1; }; }
json_ok() { # JSON JQ-FILTER [ARG NAME VALUE]... : the filter yields true
  local json=$1 filter=$2
  shift 2
  printf '%s' "$json" | jq -e "$@" "$filter" >/dev/null 2>&1 ||
    { echo "trust data does not satisfy: $(echo "$filter" | tr -s ' \n' ' ')"; return 1; }
}
pulled() { # TAG DIGEST IMAGE-ID: the last pull went through notary to DIGEST
  exit_is 0 && says "Pull \(1 of 1\): $GUN_OF_PULL:$1@sha256:$2" &&
    same "$(image_id "$GUN_OF_PULL:$1")" "$3" "image ID after the pull"
}

echo "# dct-suite: notary $NOTARY_URL, registry $REG, repository $GUN"
echo "# docker client $("$DOCKER" version --format '{{.Client.Version}}' 2>/dev/null), engine $(engine version --format '{{.Server.Version}}' 2>/dev/null || echo unreachable)"

# ===================================================================== setup
c_notary_v2() {
  local code
  code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$CA_CERT" "$NOTARY_URL/v2/" 2>"$WORK/logs/notary-v2.log")
  case "$code" in 200 | 401) ;; *) echo "HTTP '$code'"; return 1 ;; esac
}
check "notary answers GET /v2/ over TLS checked against CA_CERT" notary-v2 c_notary_v2

c_health() {
  local code
  code=$(curl -sS -o "$WORK/logs/health.log" -w '%{http_code}' --max-time 10 --cacert "$CA_CERT" "$NOTARY_URL/_notary_server/health" 2>/dev/null)
  same "$code" 200 "HTTP status"
}
check "notary health endpoint /_notary_server/health is 200" health c_health

c_registry() {
  local code
  code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 "http://$REG/v2/" 2>/dev/null)
  case "$code" in 200 | 401) ;; *) echo "HTTP '$code' from http://$REG/v2/"; return 1 ;; esac
}
check "registry $REG answers GET /v2/" registry c_registry

c_engine() {
  local drivers
  drivers=$(engine network ls --format '{{.Driver}}' 2>&1) || { echo "engine unreachable: $drivers"; return 1; }
  if printf '%s\n' "$drivers" | grep -qx bridge; then echo "the engine has a bridge network"; return 1; fi
}
check "engine at DOCKER_HOST answers and has no bridge network" engine c_engine
# Nothing below can pass without these; stop before a long series of timeouts.
[ "$FAILED" = 0 ] || finish

IMG1=$(DOCKER_HOST=$ENGINE "$HARNESS/make-test-image.sh" "dct-suite-a:$RUN_ID" 2>"$WORK/logs/images.log")
IMG2=$(DOCKER_HOST=$ENGINE "$HARNESS/make-test-image.sh" "dct-suite-b:$RUN_ID" 2>>"$WORK/logs/images.log")
c_images() {
  is_set "$IMG1" "first image not built" && is_set "$IMG2" "second image not built" || return 1
  [ "$IMG1" != "$IMG2" ] || { echo "both images have ID $IMG1"; return 1; }
}
check "two distinct test images made locally (docker import, nothing pulled)" images c_images
[ "$FAILED" = 0 ] || finish

dk http-url -n -e DOCKER_CONTENT_TRUST_SERVER="http://$NOTARY_HOSTPORT" -- trust inspect "$GUN"
c_http_url() { exit_nonzero && says "valid https URL required"; }
check "the CLI refuses a plain-http notary URL" http-url c_http_url

# ======================================================= signed push and pull
engine tag "$IMG1" "$GUN:1"
dk push1 -- push "$GUN:1"
D1=$(pushed_digest 1)
c_push1() { exit_is 0 && says "Finished initializing \"$GUN\"" && says "Successfully signed $GUN:1" && is_set "$D1" "no digest in the push output"; }
check "docker push $GUN:1 initialises the repository and signs the tag" push1 c_push1

c_server_keys() {
  local role code pub
  tuf_get "$GUN" root.json "$WORK/root.json" >/dev/null
  for role in timestamp snapshot; do
    code=$(tuf_get "$GUN" "$role.key" "$WORK/$role.key")
    same "$code" 200 "GET $role.key" || return 1
    pub=$(jq -r '.keyval.public // empty' "$WORK/$role.key" 2>/dev/null)
    is_set "$pub" "$role.key has no public key" || return 1
    jq -e --arg r "$role" --arg p "$pub" '[.signed.roles[$r].keyids[] as $k | .signed.keys[$k].keyval.public] | index($p) != null' \
      "$WORK/root.json" >/dev/null 2>&1 || { echo "root.json does not list the server's $role key"; return 1; }
  done
}
check "the server holds the snapshot and timestamp keys (GET *.key) and root.json names them" push1 c_server_keys

# Notary's meta entries are keyed by role name and carry base64 digests.
b64sha256() { openssl dgst -sha256 -binary <"$1" | base64 -w0; }
c_meta_chain() {
  local role code sum len
  for role in root targets snapshot timestamp; do
    code=$(tuf_get "$GUN" "$role.json" "$WORK/$role.json")
    same "$code" 200 "GET $role.json" || return 1
  done
  jq -e '.signed._type == "Root"' "$WORK/root.json" >/dev/null 2>&1 || { echo "root.json is not a Root"; return 1; }
  jq -e '.signed._type == "Targets" and (.signed.targets | has("1"))' "$WORK/targets.json" >/dev/null 2>&1 ||
    { echo "targets.json is not a Targets naming tag 1"; return 1; }
  sum=$(b64sha256 "$WORK/snapshot.json")
  len=$(wc -c <"$WORK/snapshot.json")
  jq -e --arg s "$sum" --argjson l "$len" '.signed._type == "Timestamp" and .signed.meta.snapshot.hashes.sha256 == $s and .signed.meta.snapshot.length == $l' \
    "$WORK/timestamp.json" >/dev/null 2>&1 || { echo "timestamp.json does not pin the snapshot.json served"; return 1; }
  for role in root targets; do
    sum=$(b64sha256 "$WORK/$role.json")
    len=$(wc -c <"$WORK/$role.json")
    jq -e --arg r "$role" --arg s "$sum" --argjson l "$len" '.signed._type == "Snapshot" and .signed.meta[$r].hashes.sha256 == $s and .signed.meta[$r].length == $l' \
      "$WORK/snapshot.json" >/dev/null 2>&1 || { echo "snapshot.json does not pin the $role.json served"; return 1; }
  done
}
check "served metadata is consistent: timestamp pins snapshot, snapshot pins root and targets" push1 c_meta_chain

dk inspect1 -- trust inspect "$GUN:1"
c_inspect1() {
  exit_is 0 && json_ok "$OUT" '.[0].Name == $n and (.[0].SignedTags | length) == 1
    and .[0].SignedTags[0].SignedTag == "1" and .[0].SignedTags[0].Digest == $d
    and .[0].SignedTags[0].Signers == ["Repo Admin"] and .[0].Signers == []
    and ([.[0].AdministrativeKeys[].Name] | sort) == ["Repository", "Root"]
    and ([.[0].AdministrativeKeys[].Keys[].ID | test("^[0-9a-f]{64}$")] | all)' \
    --arg n "$GUN:1" --arg d "$D1"
}
check "docker trust inspect $GUN:1 (JSON): the pushed digest, signed by Repo Admin, Root and Repository keys" inspect1 c_inspect1

dk pretty1 -- trust inspect --pretty "$GUN:1"
c_pretty1() { exit_is 0 && says "^1 +$D1 +\(Repo Admin\)" && says "Root Key:" && says "Repository Key:"; }
check "docker trust inspect --pretty shows tag 1 with its digest, (Repo Admin) and the administrative keys" pretty1 c_pretty1

GUN_OF_PULL=$GUN
forget "$IMG1"
dk pull1 -- pull "$GUN:1"
c_pull1() { pulled 1 "$D1" "$IMG1"; }
check "docker pull $GUN:1 resolves the tag through notary and pulls the signed digest" pull1 c_pull1

forget "$IMG1"
dk pull1-fresh -u fresh -- pull "$GUN:1"
c_pull1_fresh() { pulled 1 "$D1" "$IMG1"; }
check "a first-time client (no keys, empty trust cache) pulls the signed digest of $GUN:1" pull1-fresh c_pull1_fresh

engine tag "$IMG2" "$GUN:unsigned"
dk push-unsigned -- push --disable-content-trust "$GUN:unsigned"
if [ "$RC" = 0 ]; then
  dk pull-unsigned -- pull "$GUN:unsigned"
  c_pull_unsigned() { exit_nonzero && says "No valid trust data for unsigned"; }
  check "a tag pushed without signing is refused by a DCT pull" pull-unsigned c_pull_unsigned
else
  fail "a tag pushed without signing is refused by a DCT pull" "setup: the unsigned push failed" push-unsigned
fi

dk pull-untrusted -- pull "$GUN-nothing:1"
c_pull_untrusted() { exit_nonzero && says "does not have trust data for $GUN-nothing"; }
check "a DCT pull from a repository notary knows nothing about is refused" pull-untrusted c_pull_untrusted

# ============================================================ keys and signers
before=$(find "$WORK/admin/trust/private" -name '*.key' 2>/dev/null | wc -l)
dk keygen -n -- trust key generate alice --dir "$WORK/keys"
after=$(find "$WORK/admin/trust/private" -name '*.key' 2>/dev/null | wc -l)
c_keygen() {
  exit_is 0 || return 1
  [ -s "$WORK/keys/alice.pub" ] || { echo "no alice.pub"; return 1; }
  [ "$after" -eq $((before + 1)) ] || { echo "private keys: $before before, $after after"; return 1; }
}
check "docker trust key generate alice (no engine) writes alice.pub and stores the private key" keygen c_keygen

# bob brings his own key, made outside Docker
openssl ecparam -name prime256v1 -genkey -noout -out "$WORK/keys/bob.key" 2>"$WORK/logs/openssl.log" &&
  openssl ec -in "$WORK/keys/bob.key" -pubout -out "$WORK/keys/bob.pub" 2>>"$WORK/logs/openssl.log"
dk keyload -u bob -n -- trust key load --name bob "$WORK/keys/bob.key"
BOB_KEY_ID=$(find "$WORK/bob/trust/private" -name '*.key' 2>/dev/null | head -n 1 | xargs -r basename | sed 's/\.key$//')
c_keyload() { exit_is 0 && says "Successfully imported key from" && is_set "$BOB_KEY_ID" "no private key stored for bob"; }
check "docker trust key load --name bob imports an openssl-made P-256 key (no engine)" keyload c_keyload

dk signer-add -n -- trust signer add --key "$WORK/keys/alice.pub" alice "$GUN"
c_signer_add() { exit_is 0 && says "Successfully added signer: alice to $GUN" && json_ok "$(trust_json "$GUN")" '[.[0].Signers[].Name] == ["alice"]'; }
check "docker trust signer add alice $GUN (no engine)" signer-add c_signer_add

engine tag "$IMG2" "$GUN:2"
dk sign2 -- trust sign "$GUN:2"
D2=$(pushed_digest 2)
c_sign2() {
  exit_is 0 && says "Successfully signed $GUN:2" && is_set "$D2" "no digest in the output" &&
    json_ok "$(trust_json "$GUN")" '.[0].SignedTags[] | select(.SignedTag == "2") | .Digest == $d and .Signers == ["alice"]' --arg d "$D2"
}
check "docker trust sign $GUN:2 pushes the local image and alice signs it" sign2 c_sign2

forget "$IMG2"
dk pull2 -- pull "$GUN:2"
c_pull2() { pulled 2 "$D2" "$IMG2"; }
check "docker pull $GUN:2 follows the targets/releases delegation to the signed digest" pull2 c_pull2

dk inspect-noengine -n -- trust inspect "$GUN"
c_inspect_noengine() { exit_is 0 && json_ok "$OUT" '[.[0].SignedTags[].SignedTag] | sort == ["1", "2"]'; }
check "docker trust inspect needs no engine and lists tags 1 and 2" inspect-noengine c_inspect_noengine

dk cosign1 -n -- trust sign "$GUN:1"
c_cosign1() {
  exit_is 0 && says "Successfully signed $GUN:1" &&
    json_ok "$(trust_json "$GUN")" '.[0].SignedTags[] | select(.SignedTag == "1") | .Digest == $d and (.Signers | index("alice")) != null' --arg d "$D1"
}
check "alice co-signs the already signed $GUN:1 with no engine" cosign1 c_cosign1

before_json=$(trust_json "$GUN" | jq -c '.[0].SignedTags' 2>/dev/null)
dk bob-intrudes -u bob -n -- trust sign "$GUN:1"
c_bob_intrudes() {
  local now
  now=$(trust_json "$GUN" | jq -c '.[0].SignedTags' 2>/dev/null)
  is_set "$now" "no trust data after bob's attempt" && same "$now" "$before_json" "signed tags after bob's attempt" &&
    json_ok "$(trust_json "$GUN")" '[.[0].SignedTags[].Signers[]] | index("bob") == null'
}
check "bob, not a signer of $GUN, cannot get a signature of his into its trust data" bob-intrudes c_bob_intrudes

dk revoke2 -n -- trust revoke "$GUN:2"
c_revoke2() { exit_is 0 && says "Successfully deleted signature for $GUN:2" && json_ok "$(trust_json "$GUN")" '[.[0].SignedTags[].SignedTag] == ["1"]'; }
check "docker trust revoke $GUN:2 (no engine) removes the tag's signature" revoke2 c_revoke2

dk pull2-revoked -- pull "$GUN:2"
c_pull2_revoked() { exit_nonzero && says "No valid trust data for 2"; }
check "a DCT pull of the revoked tag is refused" pull2-revoked c_pull2_revoked

# CLI 26+ only removes a signer once its "Are you sure" prompt is answered
# with y (--force prints "Removing signer" and does nothing), and it asks only
# for the last signer of targets/releases: alice is.
dk signer-remove -n -i $'y\n' -- trust signer remove alice "$GUN"
c_signer_remove() { exit_is 0 && says "Successfully removed alice from $GUN" && json_ok "$(trust_json "$GUN")" '.[0].Signers == []'; }
check "docker trust signer remove alice $GUN (no engine, prompt answered y)" signer-remove c_signer_remove

forget "$IMG1"
dk pull1-after -- pull "$GUN:1"
c_pull1_after() { pulled 1 "$D1" "$IMG1"; }
check "after alice is removed, $GUN:1 still pulls the digest Repo Admin signed" pull1-after c_pull1_after

# alice's targets/releases is still on the server but no longer verifiable (her
# key is gone from the role), so a new signer's client rebuilds the role from
# version 1. The server must refuse that rollback.
dk signer-add-bob -n -- trust signer add --key "$WORK/keys/bob.pub" bob "$GUN"
c_signer_add_bob() { exit_is 0 && says "Successfully added signer: bob to $GUN" && json_ok "$(trust_json "$GUN")" '[.[0].Signers[].Name] == ["bob"]'; }
check "docker trust signer add bob $GUN after alice is gone (no engine)" signer-add-bob c_signer_add_bob

before_json=$(trust_json "$GUN" | jq -c '.[0].SignedTags' 2>/dev/null)
dk bob-rollback -u bob -n -- trust sign "$GUN:1"
c_bob_rollback() {
  exit_nonzero && says "trust server rejected operation" &&
    same "$(trust_json "$GUN" | jq -c '.[0].SignedTags' 2>/dev/null)" "$before_json" "signed tags after the refused upload"
}
check "the server refuses bob's targets/releases that would roll the role back to an older version" bob-rollback c_bob_rollback

engine tag "$IMG1" "$GUN-new:1"
dk sign-new-noengine -n -- trust sign "$GUN-new:1"
c_sign_new_noengine() { exit_nonzero && says "Cannot connect to the Docker daemon"; }
check "docker trust sign of a new repository needs the engine and fails cleanly without it" sign-new-noengine c_sign_new_noengine

# ============================================ a repository bob signs for alone
dk team-init -n -- trust signer add --key "$WORK/keys/bob.pub" bob "$TEAM_GUN"
c_team_init() {
  exit_is 0 && says "Successfully initialized \"$TEAM_GUN\"" && says "Successfully added signer: bob to $TEAM_GUN" &&
    json_ok "$(trust_json "$TEAM_GUN")" '.[0].SignedTags == [] and [.[0].Signers[].Name] == ["bob"]'
}
check "docker trust signer add bob $TEAM_GUN creates the repository with no image and no engine" team-init c_team_init

c_team_key_id() { json_ok "$(trust_json "$TEAM_GUN")" '.[0].Signers[0].Keys == [{"ID": $k}]' --arg k "$BOB_KEY_ID"; }
check "notary lists bob's delegation key under the ID of the key bob loaded" team-init c_team_key_id

engine tag "$IMG1" "$TEAM_GUN:1"
dk team-sign -u bob -- trust sign "$TEAM_GUN:1"
DT=$(pushed_digest 1)
c_team_sign() {
  exit_is 0 && says "Successfully signed $TEAM_GUN:1" && same "$DT" "$D1" "digest pushed for $TEAM_GUN:1" &&
    json_ok "$(trust_json "$TEAM_GUN")" '.[0].SignedTags == [{"SignedTag": "1", "Digest": $d, "Signers": ["bob"]}]' --arg d "$D1"
}
check "bob, holding only his loaded key, signs and pushes $TEAM_GUN:1" team-sign c_team_sign

GUN_OF_PULL=$TEAM_GUN
forget "$IMG1"
dk team-pull -u fresh -- pull "$TEAM_GUN:1"
c_team_pull() { pulled 1 "$D1" "$IMG1"; }
check "a first-time client pulls bob's signed $TEAM_GUN:1" team-pull c_team_pull

engine tag "$IMG2" "$TEAM_GUN:2"
dk team-push2 -u bob -- push "$TEAM_GUN:2"
DT2=$(pushed_digest 2)
c_team_push2() {
  exit_is 0 && says "Successfully signed $TEAM_GUN:2" && is_set "$DT2" "no digest in the push output" &&
    json_ok "$(trust_json "$TEAM_GUN")" '[.[0].SignedTags[] | [.SignedTag, .Digest, .Signers]] == [["1", $d1, ["bob"]], ["2", $d2, ["bob"]]]' \
      --arg d1 "$D1" --arg d2 "$DT2"
}
check "bob's docker push $TEAM_GUN:2 signs the new tag with his delegation key" team-push2 c_team_push2

dk team-revoke -u bob -n -- trust revoke --yes "$TEAM_GUN"
c_team_revoke() { exit_is 0 && says "Successfully deleted signature for $TEAM_GUN" && json_ok "$(trust_json "$TEAM_GUN")" '.[0].SignedTags == []'; }
check "docker trust revoke --yes $TEAM_GUN (bob, no engine) revokes every tag" team-revoke c_team_revoke

forget "$TEAM_GUN:1"
dk team-pull-revoked -u fresh -- pull "$TEAM_GUN:1"
c_team_pull_revoked() { exit_nonzero && says "No valid trust data for 1"; }
check "after the repository-wide revoke a DCT pull of $TEAM_GUN:1 is refused" team-pull-revoked c_team_pull_revoked

# ======================================================= notary certificate
# The CLI does not verify the notary certificate at all when the registry part
# of the image name is a loopback host, so these checks use a GUN whose
# registry part is a non-loopback address. Only notary is ever contacted.
# Without -D the CLI hides the TLS error behind "no signatures or cannot access".
if [ -n "$SECURE_HOST" ]; then
  SGUN="$SECURE_HOST/$REPO-tls"
  dk tls-init -n -- trust signer add --key "$WORK/keys/alice.pub" alice "$SGUN"
  c_tls_init() { exit_is 0 && says "Successfully initialized \"$SGUN\"" && says "Successfully added signer: alice to $SGUN"; }
  check "with the CA in \$DOCKER_CONFIG/tls/$NOTARY_HOSTPORT/ the CLI verifies notary's certificate and initialises $SGUN" tls-init c_tls_init

  mv "$CA_FILE" "$WORK/ca.aside"
  dk tls-noca -n -- -D trust inspect "$SGUN"
  c_tls_noca() { exit_nonzero && says "x509"; }
  check "with no CA for $NOTARY_HOSTPORT the CLI rejects notary's certificate (x509)" tls-noca c_tls_noca

  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=unrelated test CA" -keyout "$WORK/other-ca.key" -out "$CA_FILE" >"$WORK/logs/other-ca.log" 2>&1
  dk tls-otherca -n -- -D trust inspect "$SGUN"
  c_tls_otherca() { exit_nonzero && says "x509"; }
  check "with an unrelated CA for $NOTARY_HOSTPORT the CLI rejects notary's certificate (x509)" tls-otherca c_tls_otherca
  mv "$WORK/ca.aside" "$CA_FILE"
else
  echo "# skip - notary certificate checks (SUITE_SECURE_HOST is empty)"
fi

# ================================================================= tampering
GUN_OF_PULL=$GUN
engine tag "$IMG2" "$GUN:1"
dk tamper-push -- push --disable-content-trust "$GUN:1"
TD=$(pushed_digest 1)
if [ "$RC" = 0 ] && [ -n "$TD" ] && [ "$TD" != "$D1" ]; then
  forget "$IMG1" "$GUN:1"
  dk tamper-pull -- pull "$GUN:1"
  c_tamper() { pulled 1 "$D1" "$IMG1"; }
  check "after another image is pushed to tag 1 without signing, a DCT pull still gets the signed image" tamper-pull c_tamper
else
  fail "after another image is pushed to tag 1 without signing, a DCT pull still gets the signed image" \
    "setup: the unsigned push of a different image to tag 1 failed (digest '$TD')" tamper-push
fi

finish
