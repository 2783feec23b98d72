#!/bin/bash
# pmc lab: per-boot node setup, run by the image's pmc-lab-init unit from the node's seed
# disk (mounted read-only at $1) before ssh, libvirtd and drbd start.
# The seed holds: hostname, address, prefix, hosts, ssh_host_ed25519_key{,.pub},
# root_id_ed25519{,.pub}, authorized_keys, known_hosts, volume_group, guest-initrd.img.
set -euo pipefail
S=${1:?seed directory}
log() { echo "pmc-lab-init: $*"; }

name=$(cat "$S/hostname")
addr=$(cat "$S/address")
prefix=$(cat "$S/prefix")
vg=$(cat "$S/volume_group")

# Identity: hostname, names of all nodes, SSH host key, root's keys and known_hosts.
echo "$name" > /etc/hostname
hostname "$name"
install -m 644 "$S/hosts" /etc/hosts
rm -f /etc/ssh/ssh_host_*
install -m 600 "$S/ssh_host_ed25519_key" /etc/ssh/ssh_host_ed25519_key
install -m 644 "$S/ssh_host_ed25519_key.pub" /etc/ssh/ssh_host_ed25519_key.pub
# Root's SSH files only on first boot: like a real server's, they persist across
# restarts, and what a test (or pmc) changes there stays changed.
if [ ! -e /var/lib/pmc-lab/root-ssh-installed ]; then
  install -d -m 700 /root/.ssh
  install -m 600 "$S/root_id_ed25519" /root/.ssh/id_ed25519
  install -m 644 "$S/root_id_ed25519.pub" /root/.ssh/id_ed25519.pub
  install -m 600 "$S/authorized_keys" /root/.ssh/authorized_keys
  install -m 644 "$S/known_hosts" /root/.ssh/known_hosts
  mkdir -p /var/lib/pmc-lab
  touch /var/lib/pmc-lab/root-ssh-installed
fi
log "$name machine-id $(cat /etc/machine-id)"

# Network: br0 holds eth0 and the node's address; br0 takes eth0's MAC (all nodes come
# from one image, and a bridge's random MAC would otherwise not be unique).
ip link set lo up
for _ in $(seq 1 100); do [ -e /sys/class/net/eth0 ] && break; sleep 0.1; done
mac=$(cat /sys/class/net/eth0/address)
# Created with its address, so that udev's MACAddressPolicy leaves it alone.
ip link show br0 >/dev/null 2>&1 || ip link add br0 address "$mac" type bridge stp_state 0 forward_delay 0
ip link set br0 address "$mac"
ip link set eth0 master br0
ip link set eth0 up
ip link set br0 up
ip addr flush dev br0
ip addr add "$addr/$prefix" dev br0
log "br0 $addr/$prefix mac $mac"

# No KVM in the nodes: QEMU's software CPU offers AMD SVM, so kvm_amd would load and
# libvirt would offer "kvm" domains, but nested KVM on an emulated CPU never gets a guest
# anywhere here. Without it libvirt offers only "qemu" (software emulation), which works.
printf 'blacklist kvm_amd\nblacklist kvm_intel\ninstall kvm_amd /bin/false\ninstall kvm_intel /bin/false\n' > /etc/modprobe.d/pmc-lab-no-kvm.conf
modprobe -r kvm_amd kvm_intel kvm 2>/dev/null || true

# Kernel modules for DRBD 8.4 and device-mapper.
modprobe drbd
modprobe dm_mod
log "$(head -n1 /proc/drbd)"

# The volume group on the second disk, made on first boot.
pv=/dev/disk/by-id/virtio-pmc-pv
for _ in $(seq 1 100); do [ -b "$pv" ] && break; sleep 0.1; done
if ! vgs "$vg" >/dev/null 2>&1; then
  pvcreate -ff -y "$pv"
  vgcreate "$vg" "$pv"
  log "created volume group $vg on $pv"
fi
vgchange -ay "$vg" >/dev/null
mkdir -p /pmc-vm-backup

# The guest workload: this node's cloud kernel and the busybox initramfs the host built from
# the node image (test/lab/guest/build.sh), whose /init writes an increasing counter to its disk.
g=/var/lib/pmc-lab/guest
if ! cmp -s "$S/guest-initrd.img" "$g/initrd.img"; then
  mkdir -p "$g"
  cp "/boot/vmlinuz-$(uname -r)" "$g/vmlinuz"
  install -m 644 "$S/guest-initrd.img" "$g/initrd.img.tmp"
  chmod 644 "$g/vmlinuz"
  mv "$g/initrd.img.tmp" "$g/initrd.img"
  log "guest workload in $g"
fi
chmod 755 /var/lib/pmc-lab "$g"

# udev may still have given br0 a MAC of its own: insist.
udevadm settle --timeout=10 || true
[ "$(cat /sys/class/net/br0/address)" = "$mac" ] || { ip link set br0 address "$mac"; log "br0 MAC reset to $mac"; }
# Cheaper SSH logins on an emulated CPU: no motd scripts per session, and root's systemd
# user manager stays (lingers) instead of starting and stopping around each login.
sed -i '/pam_motd\.so/d' /etc/pam.d/sshd
mkdir -p /var/lib/systemd/linger
touch /var/lib/systemd/linger/root

# The lab's shared file system: pm-1 serves a directory of its root disk over NFSv4 to the
# lab's subnet, and every node, pm-1 too, mounts it at /var/lib/pmc-shared (the image's fstab).
# Both are queued, not waited for: they come after this unit (network-online.target), and the
# mount may wait for pm-1. If it fails (pm-1 is down), the automount tries again at each access.
# The server tells NFSv4 clients apart by their hostname: set above, before anything mounts.
if [ "$name" = pm-1 ]; then
  subnet=$(ip -4 -o route show dev br0 proto kernel scope link | awk '{ print $1; exit }')
  : "${subnet:?no subnet route on br0}"
  mkdir -p /srv/pmc-shared /etc/exports.d
  echo "/srv/pmc-shared $subnet(rw,sync,no_root_squash,no_subtree_check,fsid=1)" > /etc/exports.d/pmc-lab.exports
  systemctl start --no-block nfs-server.service
  log "NFS: /srv/pmc-shared exported to $subnet"
fi
systemctl start --no-block "$(systemd-escape --path --suffix=mount /var/lib/pmc-shared)"

# One plain boot when a test asks for it (the marker goes with it): like a server with no
# boot-time set-up for pmc, the drbd module not loaded and the volume group inactive, so that
# `pmc pm drbd-up` has all of it to do.
if [ -e /var/lib/pmc-lab/plain-boot ]; then
  rm -f /var/lib/pmc-lab/plain-boot
  vgchange -an "$vg" >/dev/null
  modprobe -r drbd
  log "plain boot: drbd not loaded, $vg inactive"
fi

touch /run/pmc-lab-ready
log "$name ready"
