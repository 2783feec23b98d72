#!/bin/bash
# pmc lab node bootstrap (baked into the image; kept tiny so the image rarely changes).
# Each node gets a small "seed" disk (virtio serial "pmc-seed") from the lab, holding the
# node's identity and node-init.sh, which does the real per-boot setup.
set -eu
seed=/dev/disk/by-id/virtio-pmc-seed
for _ in $(seq 1 300); do
  [ -b "$seed" ] && break
  udevadm settle --timeout=1 2>/dev/null || sleep 0.2
done
[ -b "$seed" ] || { echo "pmc-lab-init: no seed disk $seed" >&2; exit 1; }
mkdir -p /run/pmc-seed
mountpoint -q /run/pmc-seed || mount -o ro "$seed" /run/pmc-seed
exec bash /run/pmc-seed/node-init.sh /run/pmc-seed
