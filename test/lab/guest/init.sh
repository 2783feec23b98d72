#!/bin/busybox sh
# pmc lab guest workload: /init of a busybox initramfs booted with the cloud kernel, either
# straight from the node's files (guestDomainXml in lab.ts) or from its own disk (pmc-guest.img,
# see build.sh). It writes "PMC-COUNTER <n>" into the second 512-byte sector of its disk
# (/dev/vda, bytes 512-1023: the first holds the boot image's MBR, its partition starts at
# 1 MiB), n increasing by one about twice a second, synced each time, continuing from the value
# already there; and the same line to the serial console. readCounter in lab.ts reads it. With
# a guest agent channel it also reboots when libvirt asks through it.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules/order); do insmod "/modules/$m" 2>/dev/null; done
i=0
while [ ! -b /dev/vda ] && [ "$i" -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
if [ ! -b /dev/vda ]; then echo "PMC-GUEST no disk"; sleep 3600; poweroff -f; fi
# A guest agent, when the domain has its channel (guestDomainXml's `agent`): enough of QEMU's
# guest agent protocol for libvirt's reboot requests (`virsh reboot` prefers the agent), since
# this guest boots without ACPI.
agent() {
  while IFS= read -r line; do
    case "$line" in
      *'"guest-sync"'*) printf '{"return": %s}\n' "$(echo "$line" | sed -n 's/.*"id": *\([0-9]*\).*/\1/p')" >&3 ;;
      *'"guest-ping"'*) printf '{"return": {}}\n' >&3 ;;
      # No file systems: a freeze holds the counter's writes until the thaw.
      *'"guest-fsfreeze-freeze'*) : > /frozen; printf '{"return": 1}\n' >&3 ;;
      *'"guest-fsfreeze-thaw"'*) rm -f /frozen; printf '{"return": 1}\n' >&3 ;;
      *'"guest-fsfreeze-status"'*) if [ -e /frozen ]; then printf '{"return": "frozen"}\n'; else printf '{"return": "thawed"}\n'; fi >&3 ;;
      *'"guest-shutdown"'*'"reboot"'*) echo "PMC-GUEST reboot by the agent"; sync; reboot -f ;;
      # Powering off needs ACPI, which this guest boots without (poweroff -f would only halt it):
      # an error, so libvirt falls back to the ACPI button, which it ignores, as any such guest would.
      *'"guest-shutdown"'*) printf '{"error": {"class": "GenericError", "desc": "the pmc lab guest boots without ACPI and cannot power off"}}\n' >&3 ;;
      *'"execute"'*) printf '{"error": {"class": "CommandNotFound", "desc": "the pmc lab guest does not do this"}}\n' >&3 ;;
    esac
  done
}
for p in /sys/class/virtio-ports/*; do
  [ "$(cat "$p/name" 2>/dev/null)" = org.qemu.guest_agent.0 ] || continue
  { exec 3<>"/dev/${p##*/}"; echo "PMC-GUEST agent on /dev/${p##*/}"; agent <&3; } &
done
n=$(dd if=/dev/vda bs=512 skip=1 count=1 2>/dev/null | tr -d '\000' | sed -n 's/^PMC-COUNTER \([0-9][0-9]*\) .*/\1/p')
[ -n "$n" ] || n=0
echo "PMC-GUEST start at $n"
while :; do
  while [ -e /frozen ]; do sleep 0.1; done
  n=$((n + 1))
  printf 'PMC-COUNTER %s \n' "$n" | dd of=/dev/vda bs=512 seek=1 count=1 conv=sync,notrunc,fsync 2>/dev/null
  echo "PMC-COUNTER $n"
  sleep 0.5
done
