#!/bin/bash
# Builds the pmc lab's guest workload on the host, from the node image, without mounting
# anything:
#
#   build.sh NODE_IMAGE_DIR INITRD DISK_IMAGE 'KERNEL COMMAND LINE'
#
# INITRD: a busybox initramfs whose /init is init.sh (beside this file), with busybox and the
# virtio modules taken from the node image's base.img (the same kernel the nodes run, so every
# node gets it on its seed disk for guests booted from its files: guestDomainXml in lab.ts).
# DISK_IMAGE: a small raw disk that boots the same by itself (`pmc vm add --image`): syslinux's
# MBR, one bootable FAT partition from 1 MiB holding the node image's vmlinuz, INITRD and a
# syslinux.cfg that boots them at once with the given command line. The guest keeps its counter
# in the disk's second sector, which neither the MBR nor the partition uses.
# Both are written in a temporary directory beside DISK_IMAGE and renamed at the end, so a
# reader sees a whole file or none. Needs debugfs (e2fsprogs), modprobe (kmod), cpio, sfdisk
# (fdisk), mtools and syslinux.
set -euo pipefail

src=${1:?usage: build.sh NODE_IMAGE_DIR INITRD DISK_IMAGE CMDLINE}
initrd=${2:?usage: build.sh NODE_IMAGE_DIR INITRD DISK_IMAGE CMDLINE}
disk=${3:?usage: build.sh NODE_IMAGE_DIR INITRD DISK_IMAGE CMDLINE}
cmdline=${4:?usage: build.sh NODE_IMAGE_DIR INITRD DISK_IMAGE CMDLINE}
here=$(cd "$(dirname "$0")" && pwd)
kver=$(cat "$src/kernel-version")
mkdir -p "$(dirname "$initrd")" "$(dirname "$disk")"
work=$(mktemp -d "$(dirname "$disk")/.guest-build.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The node image's busybox and kernel modules (debugfs follows its /bin and /lib links).
root="$work/root"
mkdir -p "$root/lib/modules"
debugfs -R "rdump /lib/modules/$kver $root/lib/modules" "$src/base.img" 2>/dev/null
debugfs -R "dump /bin/busybox $work/busybox" "$src/base.img" 2>/dev/null
[ -s "$work/busybox" ] && [ -d "$root/lib/modules/$kver/kernel" ] \
  || { echo "build.sh: no busybox or no modules of $kver in $src/base.img" >&2; exit 1; }

t="$work/initramfs"
mkdir -p "$t"/{bin,dev,proc,sys,modules}
install -m 755 "$work/busybox" "$t/bin/busybox"
install -m 755 "$here/init.sh" "$t/init"
: > "$t/modules/order"
for m in virtio_pci virtio_blk virtio_console; do
  modprobe -d "$root" -S "$kver" --show-depends "$m" | while read -r kind path _; do
    [ "$kind" = insmod ] || continue
    base=$(basename "$path")
    case "$base" in
      *.ko.xz) xz -dc "$path" > "$t/modules/${base%.xz}"; base=${base%.xz} ;;
      *.ko.zst) zstd -dc "$path" > "$t/modules/${base%.zst}"; base=${base%.zst} ;;
      *) cp "$path" "$t/modules/$base" ;;
    esac
    grep -qx "$base" "$t/modules/order" || echo "$base" >> "$t/modules/order"
  done
done
# Uncompressed: decompressing is slow in emulation inside emulation.
(cd "$t" && find . | sort | cpio -o -H newc --quiet -R 0:0) > "$work/initrd.img"

# The disk: what the partition holds, 4 MiB to spare, and the 1 MiB before it.
cat > "$work/syslinux.cfg" <<CFG
SERIAL 0 115200
DEFAULT pmc
PROMPT 0
TIMEOUT 0
LABEL pmc
  LINUX /vmlinuz
  INITRD /initrd.img
  APPEND $cmdline
CFG
mib=$(( ($(stat -c %s "$src/vmlinuz") + $(stat -c %s "$work/initrd.img") + 1048575) / 1048576 + 4 ))
truncate -s "$(( mib + 1 ))M" "$work/disk.img"
printf 'label: dos\nstart=2048, type=e, bootable\n' | sfdisk -q "$work/disk.img"
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$work/disk.img" bs=440 count=1 conv=notrunc status=none
part="$work/disk.img@@1M"
export MTOOLS_SKIP_CHECK=1
mformat -i "$part" -T "$(( mib * 2048 ))" -H 2048 -v PMCGUEST ::
mcopy -i "$part" "$src/vmlinuz" ::vmlinuz
mcopy -i "$part" "$work/initrd.img" ::initrd.img
mcopy -i "$part" "$work/syslinux.cfg" ::syslinux.cfg
syslinux --offset 1048576 --install "$work/disk.img"

mv "$work/initrd.img" "$initrd"
mv "$work/disk.img" "$disk"
echo "build.sh: $initrd ($(stat -c %s "$initrd") bytes) and $disk (${mib} MiB partition from 1 MiB)"
