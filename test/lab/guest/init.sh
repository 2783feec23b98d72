#!/bin/busybox sh
# pmc lab guest workload: /init of a busybox initramfs booted with the cloud kernel, either
# straight from the node's files (guestDomainXml in lab.ts) or from its own disk (pmc-guest.img,
# see build.sh). It writes "PMC-COUNTER <n>" into the second 512-byte sector of its disk
# (/dev/vda, bytes 512-1023: the first holds the boot image's MBR, its partition starts at
# 1 MiB), n increasing by one about twice a second, synced each time, continuing from the value
# already there; and the same line to the serial console. readCounter in lab.ts reads it. With
# a guest agent channel it also reboots or powers off when libvirt asks through it.
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
      *'"guest-shutdown"'*) echo "PMC-GUEST power off by the agent"; sync; /bin/pmc-poweroff ;;
      *'"execute"'*) printf '{"error": {"class": "CommandNotFound", "desc": "the pmc lab guest does not do this"}}\n' >&3 ;;
    esac
  done
}
# The kernel boots with acpi=off (fast) and so cannot power off (poweroff -f only halts). The
# agent does what ACPI's S5 would: it writes SLP_EN with sleep type 0 (QEMU's \_S5) into PM1a_CNT
# of the 'pc' machine's PIIX4 power management, port 0x604 (the domain needs <acpi/>, or QEMU has
# no such device). The kernel has no /dev/port, hence this 164-byte static x86-64 program:
# ioperm(0x604, 2, 1); outw(0x2000, 0x604); exit(1) if still alive. Its code (offset 0x78):
#   b8 ad 00 00 00 / bf 04 06 00 00 / be 02 00 00 00 / ba 01 00 00 00 / 0f 05   ioperm
#   66 ba 04 06 / 66 b8 00 20 / 66 ef                                       out %ax,(%dx)
#   b8 3c 00 00 00 / bf 01 00 00 00 / 0f 05                                  exit(1)
printf '\177\105\114\106\002\001\001\000\000\000\000\000\000\000\000\000\002\000\076\000\001\000\000\000\170\000\100\000\000\000\000\000\100\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\100\000\070\000\001\000\000\000\000\000\000\000\001\000\000\000\005\000\000\000\000\000\000\000\000\000\000\000\000\000\100\000\000\000\000\000\000\000\100\000\000\000\000\000\244\000\000\000\000\000\000\000\244\000\000\000\000\000\000\000\000\020\000\000\000\000\000\000\270\255\000\000\000\277\004\006\000\000\276\002\000\000\000\272\001\000\000\000\017\005\146\272\004\006\146\270\000\040\146\357\270\074\000\000\000\277\001\000\000\000\017\005' > /bin/pmc-poweroff
chmod 755 /bin/pmc-poweroff
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
