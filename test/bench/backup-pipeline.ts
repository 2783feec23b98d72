/**
 * `npm run bench:backup-pipeline`: pmc's on-node backup and restore commands beside plain dd, on
 * this machine's own CPU and disk (the lab's emulated CPU makes sha256 and xdelta3 many times
 * slower than on a server, so `npm run bench:backup` there measures the emulation more than pmc).
 * The commands are the ones pmc plans (planBackup's capture step, vm restore's write step), run
 * by sh with the real dd, openssl (sha256sum where there is none), xdelta3 and zstd on a disk
 * image in a temporary directory; lvs and lvremove are stand-ins (there is no snapshot). A
 * benchmark: numbers, never asserted.
 * PMC_BENCH_DISK_MIB sets the disk size (default 1024).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync, writeSync, closeSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { planBackup } from '../../src/ops/backup/backup-plan.js';
import { listingCommand, parseListing, selectBackup, type BackupKind } from '../../src/ops/backup/catalog.js';
import { restoreSource, writeStep } from '../../src/ops/backup/restore-plan.js';
import { backupConfig, webCluster } from '../unit/ops/backup-web.js';

const MiB = 1024 ** 2;
const bytes = Number(process.env.PMC_BENCH_DISK_MIB ?? 1024) * MiB;
const dir = mkdtempSync(join(process.env.PMC_BENCH_DIR ?? tmpdir(), 'pmc-bench-pipeline-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const bin = join(dir, 'bin');
const backups = join(dir, 'backups');
mkdirSync(bin);
for (const [name, body] of [['lvs', 'case "$*" in *lv_attr*) echo "  swi-a-s---" ;; *snap_percent*) echo "  3.00" ;; esac'], ['lvremove', 'exit 0']]) {
  writeFileSync(join(bin, name!), `#!/bin/sh\n${body}\n`);
  chmodSync(join(bin, name!), 0o755);
}
const disk = join(dir, 'disk');
const SNAPSHOT = '/dev/vg-pmc/web_pmcsnap';

const state = webCluster(bytes);
const config = backupConfig(backups);

/** Cold reads, as from a disk nobody read lately: the page cache is dropped before each run (root only). */
const cold = (() => {
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3\n');
    return true;
  } catch {
    return false;
  }
})();

function timed(command: string, input = ''): number {
  if (cold) {
    spawnSync('sync');
    writeFileSync('/proc/sys/vm/drop_caches', '3\n');
  }
  const t0 = performance.now();
  const r = spawnSync('sh', ['-c', command], { input, encoding: 'utf8', maxBuffer: 64 * MiB, env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
  if (r.status !== 0) throw new Error(`exit ${r.status}: ${command.slice(0, 200)}\n${r.stderr}`);
  return (performance.now() - t0) / 1000;
}

const entries = () => parseListing('pm-2', backups, spawnSync('sh', ['-c', listingCommand(backups)], { encoding: 'utf8' }).stdout).entries;

function pmcCapture(stamp: string, kind: BackupKind, zstd = false): number {
  const plan = planBackup(state, config, { vm: 'web', kind, compression: zstd ? 'zstd' : undefined, node: undefined },
    { entries: entries(), stamp, agent: false, pmcVersion: 'bench' });
  const step = plan.steps.at(-1)!;
  return timed(step.command.replaceAll(`if=${SNAPSHOT}`, `if=${disk}`), (step.input as { text: string }).text);
}

const rate = (seconds: number) => `${(bytes / MiB / seconds).toFixed(0)} MiB/s`;
const line = (what: string, seconds: number, extra: string) => console.log(`${what.padEnd(58)} ${seconds.toFixed(2).padStart(7)} s  ${extra}`);

// Random data, so neither zstd nor xdelta3 finds anything to compress beyond the changes.
const fd = openSync(disk, 'w');
for (let done = 0; done < bytes; done += 16 * MiB) writeSync(fd, randomBytes(Math.min(16 * MiB, bytes - done)));
closeSync(fd);
console.log(`# ${bytes / MiB} MiB of random data in ${dir}; wall clock, this machine's CPU and disk; `
  + `${cold ? 'page cache dropped before each run' : 'warm page cache (not root: cannot drop it)'}\n`);

const plainDd = timed(`dd if=${disk} of=${join(dir, 'plain')} bs=16M status=none && sync ${join(dir, 'plain')}`);
rmSync(join(dir, 'plain'));
const full = pmcCapture('2026-12-03-08-00-00', 'full');
line('full backup: pmc\'s capture (dd, sha256 read back, manifest, sync)', full, `${rate(full)}, ${(100 * plainDd / full).toFixed(0)}% of dd's rate`);
line('full backup: plain dd bs=16M + sync', plainDd, rate(plainDd));

// 1% of the 4 KiB blocks rewritten here and there.
const w = openSync(disk, 'r+');
for (let i = 0; i < bytes / 4096 / 100; i++) writeSync(w, randomBytes(4096), 0, 4096, Math.floor(Math.random() * (bytes / 4096)) * 4096);
closeSync(w);
const readTwice = timed(`dd if=${disk} of=/dev/null bs=16M status=none && dd if=${join(backups, 'web', '2026-12-03-08-00-00.base')} of=/dev/null bs=16M status=none`);
const incremental = pmcCapture('2026-12-03-09-00-00', 'incremental');
const delta = statSync(join(backups, 'web', '2026-12-03-09-00-00.xdelta3')).size;
line('incremental after 1% changed: pmc (xdelta3 -e -S none)', incremental, `${(delta / MiB).toFixed(1)} MiB file, ${(incremental / readTwice).toFixed(2)}x reading the disk and the full image`);
line('reading the disk and the full image: dd bs=16M, twice', readTwice, '');

const device = join(dir, 'device');
writeFileSync(device, '');
const restore = writeStep(state, 'pm-2', device, restoreSource(selectBackup(entries(), 'web', '2026-12-03-09-00-00', 'pm-2', ['pm-1', 'pm-2'])));
const restoreSeconds = timed(restore.command);
const plainRestore = timed(`dd if=${join(backups, 'web', '2026-12-03-08-00-00.base')} of=${device} bs=16M conv=fsync status=none`);
line('restore full + increment: pmc (decode, write, read back, sha256)', restoreSeconds, `${rate(restoreSeconds)}, ${(100 * plainRestore / restoreSeconds).toFixed(0)}% of dd's rate`);
line('restore: plain dd of the full image, conv=fsync', plainRestore, rate(plainRestore));

const zstdFull = pmcCapture('2026-12-03-10-00-00', 'full', true);
line('full backup with --zstd (compress, then decompress to check)', zstdFull, rate(zstdFull));
