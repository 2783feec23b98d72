/**
 * `npm run bench:backup`: pmc's backups beside the plain tools, on the lab (it must be up;
 * run no lab suite at the same time). On one node and one device, in one run:
 *  - a full backup (`pmc vm backup -b`) beside `dd if=<snapshot> of=<file> bs=16M` of the same
 *    LV on the node pmc reads it on, both synced to disk and both from a cold page cache;
 *  - an increment after changing 1% of the disk, its time and size beside the full, and beside
 *    reading the disk twice (what an increment must at least do: read the disk and the full image);
 *  - restoring onto the VM's own disk (a stopped VM), beside `dd` of the full image onto its DRBD device.
 * The VM is `bb-a` (DRBD minors 950-969): created, measured and removed with its backups.
 */
import { performance } from 'node:perf_hooks';
import { BACKUP_DIR, VOLUME_GROUP, labExec, labExecOk, shq } from '../lab/lab.ts';
import { labConfigFor, pmc } from '../lab/pmc.ts';

const vm = 'bb-a';
const MiB = 1024 ** 2;
const diskMiB = Number(process.env.PMC_BENCH_DISK_MIB ?? 1024);
const config = labConfigFor('bench-backup', { minors: [950, 969], ports: [9950, 9969] });
const NODES = ['pm-1', 'pm-2'];

interface Manifest { node: string; stamp: string; type: string; data: { bytes: number }; file: { bytes: number } }

async function timed<T>(what: () => Promise<T>): Promise<{ value: T; s: number }> {
  const t0 = performance.now();
  const value = await what();
  return { value, s: (performance.now() - t0) / 1000 };
}

async function pmcOk(args: string[]): Promise<{ stdout: string; s: number }> {
  const { value: r, s } = await timed(() => pmc(args, { config, timeoutMs: 3_600_000 }));
  if (r.exitCode !== 0) throw new Error(`pmc ${args.join(' ')} exited ${r.exitCode}:\n${r.stdout}\n${r.stderr}`);
  return { stdout: r.stdout, s };
}

/** A shell command's wall time on the node, cold page cache, in seconds. */
async function onNode(node: string, command: string): Promise<number> {
  await labExecOk(node, 'sync; echo 3 > /proc/sys/vm/drop_caches');
  const { s } = await timed(() => labExecOk(node, command, { timeoutMs: 3_600_000 }));
  return s;
}

async function primaryDevice(): Promise<{ node: string; device: string }> {
  for (const node of NODES) {
    const role = await labExec(node, `drbdadm role ${vm}`);
    if (role.stdout.startsWith('Primary/')) return { node, device: (await labExecOk(node, `drbdadm sh-dev ${vm}`)).trim() };
  }
  throw new Error(`${vm} is Primary nowhere`);
}

async function cleanup(): Promise<void> {
  await pmc(['vm', 'rm', '-f', vm], { config });
  await Promise.all(['pm-1', 'pm-2', 'pm-3'].map((n) => labExec(n, `rm -rf ${BACKUP_DIR}/${vm} ${BACKUP_DIR}/bench-dd.img; ` +
    `for s in $(lvs --noheadings -o lv_name ${VOLUME_GROUP} | grep '^ *bb-'); do lvremove -q -f ${VOLUME_GROUP}/$s; done; true`)));
}

const rate = (bytes: number, s: number) => `${(bytes / MiB / s).toFixed(1)} MiB/s`;
const row = (label: string, s: number, extra = '') => console.log(`${label.padEnd(52)} ${s.toFixed(1).padStart(7)} s  ${extra}`);

async function main(): Promise<void> {
  await cleanup();
  await pmcOk(['vm', 'add', '-p', 'pm-1', '-p', 'pm-2', '-s', `${diskMiB}M`, '-m', '64M', '--no-start', '--force', vm]);
  try {
    const primary = await primaryDevice();
    const bytes = Number((await labExecOk(primary.node, `blockdev --getsize64 ${primary.device}`)).trim());
    await labExecOk(primary.node, `dd if=/dev/urandom of=${primary.device} bs=1M iflag=fullblock,count_bytes count=${bytes} oflag=direct conv=fsync status=none`, { timeoutMs: 3_600_000 });
    console.log(`# ${vm}: ${bytes / MiB} MiB of random data, Primary on ${primary.node}; times are wall clock on the lab\n`);

    const full = await pmcOk(['vm', 'backup', '-b', vm, '--json']);
    const fm = (JSON.parse(full.stdout) as Array<{ manifest: Manifest }>)[0]!.manifest;
    const node = fm.node;
    const lv = `${VOLUME_GROUP}/${vm}`;
    const snap = `${VOLUME_GROUP}/bb-bench-snap`;
    // The same work as pmc minus pmc: snapshot, dd of the data area into a file on the same disk, sync, remove the snapshot.
    const ddFull = await onNode(node, [
      `lvcreate -q -s -L 256m -n bb-bench-snap ${lv}`,
      `dd if=/dev/${snap} of=${BACKUP_DIR}/bench-dd.img bs=16M iflag=count_bytes count=${bytes} conv=fsync status=none`,
      `lvremove -q -f ${snap}`,
    ].join(' && '));
    await labExecOk(node, `rm -f ${BACKUP_DIR}/bench-dd.img`);
    row(`full backup: pmc vm backup -b (on ${node})`, full.s, `${rate(bytes, full.s)}, ${(ddFull / full.s * 100).toFixed(0)}% of dd's rate`);
    row(`full backup: snapshot + dd bs=16M + sync (on ${node})`, ddFull, rate(bytes, ddFull));

    // 1% of the disk, in 8 pieces spread over it.
    const piece = Math.max(1, Math.round(bytes / MiB / 100 / 8));
    const step = Math.floor(bytes / MiB / 8);
    const writes = Array.from({ length: 8 }, (_, i) => `dd if=/dev/urandom of=${primary.device} bs=1M seek=${i * step} count=${piece} iflag=fullblock oflag=direct status=none`);
    await labExecOk(primary.node, `${writes.join(' && ')} && sync`);
    const inc = await pmcOk(['vm', 'backup', vm, '--json']);
    const im = (JSON.parse(inc.stdout) as Array<{ manifest: Manifest }>)[0]!.manifest;
    const readTwice = await onNode(node, `for i in 1 2; do dd if=/dev/${lv} of=/dev/null bs=16M iflag=direct,count_bytes count=${bytes} status=none; done`);
    row(`incremental (${piece * 8} MiB changed): pmc vm backup`, inc.s, `${(im.file.bytes / MiB).toFixed(1)} MiB file (full: ${(fm.file.bytes / MiB).toFixed(0)} MiB), ${(inc.s / full.s).toFixed(2)}x the full's time`);
    row(`reading the disk twice: dd bs=16M, direct (on ${node})`, readTwice, `increment takes ${(inc.s / readTwice * 100).toFixed(0)}% of it`);

    const restore = await pmcOk(['vm', 'restore', vm, '--at', fm.stamp, '-f']);
    row(`restore the full image onto ${vm}'s own disk: pmc vm restore`, restore.s, rate(bytes, restore.s));
    // dd writes where the image is: that node becomes the (only) Primary for it.
    const current = await primaryDevice().catch(() => undefined);
    if (current && current.node !== node) await labExecOk(current.node, `drbdadm secondary ${shq(vm)}`);
    const promote = current?.node !== node;
    const ddRestore = await onNode(node, [
      ...(promote ? [`drbdadm primary ${shq(vm)}`] : []),
      `dd if=${BACKUP_DIR}/${vm}/${fm.stamp}.base of=$(drbdadm sh-dev ${shq(vm)}) bs=16M oflag=direct conv=fsync status=none`,
      ...(promote ? [`drbdadm secondary ${shq(vm)}`] : []),
    ].join(' && '));
    row(`  beside dd of the image onto its DRBD device (on ${node})`, ddRestore, rate(bytes, ddRestore));
  } finally {
    await cleanup();
  }
}

main().catch((err: Error) => {
  console.error(err.message);
  process.exit(1);
});
