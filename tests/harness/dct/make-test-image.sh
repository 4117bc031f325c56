#!/usr/bin/env bash
# Usage: make-test-image.sh NAME [MARKER]
#
# Creates a tiny single-layer image NAME (repo[:tag]) in the engine at
# $DOCKER_HOST with `docker import`, so no registry and no network are needed.
# The layer holds /etc/dct-marker (MARKER; by default NAME plus a nonce, so
# every call gives an image with a different ID) and, when busybox-static is
# installed, /bin/busybox. Nothing ever runs in it.
#
# stdout: the image ID (sha256:...).
# Env: DOCKER (client, default docker), DCT_IMAGE_BUSYBOX=0 leaves busybox out.
set -euo pipefail

[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: make-test-image.sh NAME [MARKER]" >&2; exit 2; }
NAME=$1
MARKER=${2:-"$NAME nonce=$(od -An -N8 -tx8 /dev/urandom | tr -d ' ') t=$(date +%s%N)"}
DOCKER=${DOCKER:-docker}

root=$(mktemp -d /tmp/dct-img.XXXXXX)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/fs/etc" "$root/fs/bin"
printf '%s\n' "$MARKER" >"$root/fs/etc/dct-marker"
if [ "${DCT_IMAGE_BUSYBOX:-1}" != 0 ]; then
  for bb in /bin/busybox /usr/bin/busybox; do
    if [ -x "$bb" ]; then cp "$bb" "$root/fs/bin/busybox"; break; fi
  done
fi
# fixed owner and mode so only the marker makes images differ
tar --owner=0 --group=0 --numeric-owner -C "$root/fs" -cf "$root/layer.tar" .

"$DOCKER" import \
  --change 'LABEL org.notary-rs.test=dct' \
  --change 'CMD ["/bin/busybox", "cat", "/etc/dct-marker"]' \
  --message "dct test image $NAME" \
  "$root/layer.tar" "$NAME"
