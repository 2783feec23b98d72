#!/bin/busybox sh
# pmc lab guest workload: /init of a busybox initramfs booted with the cloud kernel as a
# libvirt domain. It writes "PMC-COUNTER <n>" into the first 512-byte sector of its disk
# (/dev/vda), n increasing by one about twice a second, synced each time, continuing from
# the value already on the disk; and the same line to the serial console.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules/order); do insmod "/modules/$m" 2>/dev/null; done
i=0
while [ ! -b /dev/vda ] && [ "$i" -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
if [ ! -b /dev/vda ]; then echo "PMC-GUEST no disk"; sleep 3600; poweroff -f; fi
n=$(dd if=/dev/vda bs=512 count=1 2>/dev/null | tr -d '\000' | sed -n 's/^PMC-COUNTER \([0-9][0-9]*\) .*/\1/p')
[ -n "$n" ] || n=0
echo "PMC-GUEST start at $n"
while :; do
  n=$((n + 1))
  printf 'PMC-COUNTER %s \n' "$n" | dd of=/dev/vda bs=512 count=1 conv=sync,notrunc,fsync 2>/dev/null
  echo "PMC-COUNTER $n"
  sleep 0.5
done
