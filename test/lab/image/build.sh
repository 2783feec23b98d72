#!/bin/bash
# Builds the pmc lab node image from Debian's packages only.
#
#   build.sh OUTDIR
#
# Writes OUTDIR/base.img (ext4 root filesystem, sparse), OUTDIR/vmlinuz and
# OUTDIR/initrd.img (the Debian cloud kernel, with DRBD 8.4 and device-mapper),
# built in OUTDIR.tmp and renamed at the end, so OUTDIR exists only when complete.
# The lab's CLI (test/lab/cli.ts) calls this with OUTDIR = the cache directory
# named by a hash of every file in test/lab/image/, so a changed recipe builds anew.
# Needs root, debootstrap and e2fsprogs; reads the Debian mirror from /etc/apt
# (or $PMC_LAB_MIRROR).
set -euo pipefail

out=${1:?usage: build.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
work="$out.tmp"
rootfs="$work/rootfs"
suite=bookworm

step() { echo "==> $*"; }

# The URI apt uses for Debian's main archive (not -security, not third parties).
mirror() {
  if [ -n "${PMC_LAB_MIRROR:-}" ]; then echo "$PMC_LAB_MIRROR"; return; fi
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    # deb822: a stanza whose URIs end in /debian and whose Suites name $suite
    uri=$(awk -v s="$suite" '
      /^URIs:/ { u=$2 } /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s) ok=1 }
      /^$/ { if (ok && u ~ /\/debian\/?$/) { print u; exit } ok=0; u="" }
      END { if (ok && u ~ /\/debian\/?$/) print u }' "$f" | head -n1)
    if [ -n "$uri" ]; then echo "$uri"; return; fi
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    uri=$(awk -v s="$suite" '$1 == "deb" && $0 !~ /\[/ && $3 == s && $2 ~ /\/debian\/?$/ { print $2; exit }
                             $1 == "deb" && $2 ~ /^\[/ && $4 == s && $3 ~ /\/debian\/?$/ { print $3; exit }' "$f")
    if [ -n "$uri" ]; then echo "$uri"; return; fi
  done
  echo "build.sh: no Debian $suite mirror found in /etc/apt (set PMC_LAB_MIRROR)" >&2
  return 1
}

unmount_all() {
  local m
  for m in "$rootfs/proc" "$rootfs/sys" "$rootfs/dev/pts"; do
    if mountpoint -q "$m" 2>/dev/null; then umount -l "$m" || true; fi
  done
}
trap unmount_all EXIT

in_root() { chroot "$rootfs" /usr/bin/env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@"; }

unmount_all
rm -rf --one-file-system "$work"
mkdir -p "$work"

uri=$(mirror)
step "debootstrap $suite from $uri"
packages=systemd-sysv,libpam-systemd,udev,kmod,dbus,procps,iproute2,iputils-ping,ifupdown,netbase
packages+=,openssh-server,openssh-client,rsync,xdelta3,zstd,lvm2,drbd-utils
packages+=,libvirt-daemon-system,libvirt-clients,qemu-system-x86,qemu-utils
packages+=,busybox-static,cpio,e2fsprogs,util-linux,less
# debootstrap may leave a package or two unconfigured (dbus/polkitd ordering);
# apt-get --fix-broken below finishes them.
debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$uri" \
  || step "debootstrap reported errors; apt-get --fix-broken install finishes the job"
[ -x "$rootfs/usr/bin/apt-get" ] || { echo "debootstrap failed" >&2; exit 1; }

mount -t proc proc "$rootfs/proc"
mount -t sysfs sysfs "$rootfs/sys"
printf '#!/bin/sh\nexit 101\n' > "$rootfs/usr/sbin/policy-rc.d"
chmod 755 "$rootfs/usr/sbin/policy-rc.d"

step "finish unconfigured packages"
in_root apt-get --fix-broken install -y
step "install the cloud kernel"
in_root apt-get install -y --no-install-recommends linux-image-cloud-amd64 initramfs-tools
# The lab's shared file system (NFS, served by pm-1: node-init.sh). Installed here, not by
# debootstrap, so that policy-rc.d stops their maintainer scripts: nfs-kernel-server's init
# script would otherwise modprobe, mount nfsd and run exportfs inside the chroot.
step "install the NFS server and client"
in_root apt-get install -y --no-install-recommends nfs-kernel-server nfs-common

kver=$(basename "$(ls -d "$rootfs"/lib/modules/* | sort -V | tail -n1)")
step "kernel $kver"
for m in drbd dm-mod bridge virtio_blk virtio_net nfsd nfsv4 autofs4; do
  in_root modinfo -k "$kver" -F filename "$m" >/dev/null \
    || { echo "kernel $kver lacks module $m" >&2; exit 1; }
done

step "configure the node"
# Identity comes per node from the seed disk at boot (pmc-lab-init.sh): none in the image.
rm -f "$rootfs"/etc/ssh/ssh_host_*
: > "$rootfs/etc/machine-id"
rm -f "$rootfs/var/lib/dbus/machine-id" "$rootfs/var/lib/systemd/random-seed"
ln -sf /etc/machine-id "$rootfs/var/lib/dbus/machine-id"
echo localhost > "$rootfs/etc/hostname"
printf '127.0.0.1 localhost\n' > "$rootfs/etc/hosts"
printf '# pmc lab: no DNS; names come from /etc/hosts\n' > "$rootfs/etc/resolv.conf"
printf '/dev/vda / ext4 rw,errors=remount-ro 0 0\n' > "$rootfs/etc/fstab"
# The lab's shared file system, pm-1's NFS export (node-init.sh), on every node. An automount:
# boot never waits for it (pm-1 may boot last, or be down), it mounts on first access (or when
# node-init.sh asks), and while pm-1 is away nothing writes into the empty directory under it.
printf 'pm-1:/srv/pmc-shared /var/lib/pmc-shared nfs4 vers=4.2,hard,_netdev,nofail,x-systemd.automount 0 0\n' >> "$rootfs/etc/fstab"
printf 'auto lo\niface lo inet loopback\n' > "$rootfs/etc/network/interfaces"
printf 'drbd\ndm_mod\nbridge\n' > "$rootfs/etc/modules-load.d/pmc-lab.conf"
cat > "$rootfs/etc/ssh/sshd_config.d/pmc-lab.conf" <<'CONF'
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
MaxStartups 100:30:200
MaxSessions 100
CONF
# LVM must not look into DRBD devices (they carry the VMs' own data).
sed -i 's|^devices {|devices {\n\tglobal_filter = [ "r\|^/dev/drbd.*\|" ]|' "$rootfs/etc/lvm/lvm.conf"
grep -q 'global_filter = \[ "r|^/dev/drbd' "$rootfs/etc/lvm/lvm.conf"
# Nothing in the lab may reach for the network on a timer.
for t in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer; do
  ln -sf /dev/null "$rootfs/etc/systemd/system/$t"
done
# NFS: version 4 only (the nodes mount 4.2), which needs neither rpcbind nor statd (NFSv3's
# locking). Every node mounts the share (fstab, above); only pm-1 serves it, and its
# node-init.sh starts the server, so no node starts it at boot. No pNFS block layouts (blkmapd).
cat > "$rootfs/etc/nfs.conf.d/pmc-lab.conf" <<'CONF'
[nfsd]
vers3=n
udp=n
CONF
in_root systemctl disable nfs-server.service nfs-blkmap.service
# On pm-1 the server starts before its own mount of the share and stops after it: a clean
# shutdown unmounts first instead of waiting on a server that is gone.
mkdir -p "$rootfs/etc/systemd/system/nfs-server.service.d"
printf '%s\n' '[Unit]' 'Before=var-lib-pmc\x2dshared.mount' > "$rootfs/etc/systemd/system/nfs-server.service.d/pmc-lab.conf"
in_root systemctl mask rpcbind.service rpcbind.socket rpc-statd.service rpc-statd-notify.service
install -m 755 "$here/pmc-lab-init.sh" "$rootfs/usr/local/sbin/pmc-lab-init"
install -m 644 "$here/pmc-lab-init.service" "$rootfs/etc/systemd/system/pmc-lab-init.service"
mkdir -p "$rootfs/etc/systemd/system/multi-user.target.wants"
ln -sf /etc/systemd/system/pmc-lab-init.service \
  "$rootfs/etc/systemd/system/multi-user.target.wants/pmc-lab-init.service"
mkdir -p "$rootfs/pmc-vm-backup" "$rootfs/var/lib/pmc-lab" "$rootfs/var/lib/pmc-shared"

step "clean up"
rm -f "$rootfs/usr/sbin/policy-rc.d"
in_root apt-get clean
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/log/*.log "$rootfs"/tmp/*
unmount_all

cp "$rootfs/boot/vmlinuz-$kver" "$work/vmlinuz"
cp "$rootfs/boot/initrd.img-$kver" "$work/initrd.img"
echo "$kver" > "$work/kernel-version"

step "make the ext4 image"
mke2fs -q -t ext4 -L pmc-root -E root_owner=0:0 -d "$rootfs" "$work/base.img" 4G
rm -rf --one-file-system "$rootfs"
rm -rf "$out"
mv "$work" "$out"
step "image ready in $out ($(du -sh "$out" | cut -f1) on disk)"
