#!/bin/bash
# Entry point of the galera1..3 services: decides whether this node creates the cluster
# (--wsrep-new-cluster) or joins the others, then hands over to the image's own entrypoint
# (which initialises an empty data volume first).
#
# Bootstrap when
#   - GALERA_FIRST=1 (galera1 only) and the volume has never run Galera (no grastate.dat):
#     the very first start of the stack; or
#   - grastate.dat says safe_to_bootstrap: 1: this node left last at a clean shutdown, so it
#     has every committed transaction (`docker-compose stop/down` stops galera3, galera2,
#     then galera1, because of depends_on, so normally that is galera1).
# Everything else joins. Never bootstrap unconditionally: a restarted galera1 would found a
# second cluster beside the running one (split brain).
#
# After a crash of all three, no node is safe_to_bootstrap; if all three come back, Galera's
# pc.recovery (on by default) rebuilds the primary component from gvwstate.dat by itself.
# Otherwise see README.md ("Recovery").
set -euo pipefail
state=/var/lib/mysql/grastate.dat
extra=()
if [ ! -e "$state" ] && [ "${GALERA_FIRST:-0}" = 1 ]; then
    echo "galera-node: first start of the first node: bootstrapping a new cluster"
    extra+=(--wsrep-new-cluster)
elif [ -e "$state" ] && grep -q '^safe_to_bootstrap: *1' "$state"; then
    echo "galera-node: safe_to_bootstrap: 1 in grastate.dat: bootstrapping the cluster"
    extra+=(--wsrep-new-cluster)
else
    echo "galera-node: joining gcomm://galera1,galera2,galera3"
fi
exec docker-entrypoint.sh mariadbd "$@" "${extra[@]}"
