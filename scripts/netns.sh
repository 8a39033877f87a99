#!/usr/bin/env bash
# Run a command inside a network namespace of its own that nothing can leave: loopback,
# and a veth pair whose two ends both stay inside it (10.213.7.1 and 10.213.7.2), with no
# route to anywhere else. WebRTC needs a non-loopback interface to gather candidates;
# this one leads nowhere but back into the namespace.
#   scripts/netns.sh COMMAND [ARGS...]
# Inside, OSHARA_NETNS_ADDRESSES="10.213.7.1 10.213.7.2". As root it uses `unshare --net`;
# otherwise an unprivileged user namespace (`unshare --map-root-user --net`).
set -euo pipefail

if [ -z "${OSHARA_NETNS_ADDRESSES:-}" ]; then
  command -v unshare >/dev/null && command -v ip >/dev/null || {
    echo "scripts/netns.sh needs unshare (util-linux) and ip (iproute2)" >&2; exit 1; }
  export OSHARA_NETNS_ADDRESSES="10.213.7.1 10.213.7.2"
  if [ "$(id -u)" = 0 ]; then exec unshare --net -- "$0" "$@"; fi
  exec unshare --map-root-user --net -- "$0" "$@" || {
    echo "scripts/netns.sh: cannot make a network namespace: run as root or enable unprivileged user namespaces" >&2; exit 1; }
fi

read -r a b <<<"$OSHARA_NETNS_ADDRESSES"
ip link set lo up
ip link add oshara0 type veth peer name oshara1
ip addr add "$a/30" dev oshara0
ip addr add "$b/30" dev oshara1
ip link set oshara0 up
ip link set oshara1 up
exec "$@"
