// Backups written and read by the real tools: the capture step of planBackup's plan, run by a
// real POSIX shell with the real dd, zstd, xdelta3, flock, openssl and sha256sum on a disk image in a
// temporary directory (lvs and lvremove are stand-ins: there is no snapshot), then listed,
// verified, and restored as pmc does. zstd and xdelta3 must be installed
// (apt-get install zstd xdelta3): without them these tests fail, they do not pass.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { planBackup, SOURCE_WINDOW_BYTES } from '../../../src/ops/backup/backup-plan.js';
import { listingCommand, parseListing, selectBackup, type BackupEntry, type BackupKind } from '../../../src/ops/backup/catalog.js';
import { restoreSource, writeStep } from '../../../src/ops/backup/restore-plan.js';
import { judge, planVerify } from '../../../src/ops/backup/verify.js';
import { backupConfig, webCluster } from './backup-web.js';

const MiB = 1024 ** 2;
/** Larger than xdelta3's source window, so an increment's source is read across windows. */
const DATA_BYTES = SOURCE_WINDOW_BYTES + 8 * MiB;
const SNAPSHOT = '/dev/vg-pmc/web_pmcsnap';

const dir = mkdtempSync(join(tmpdir(), 'pmc-backup-shell-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const bin = join(dir, 'bin');
const backups = join(dir, 'backups');
mkdirSync(bin);

function tool(name: string, body: string): void {
  writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
  chmodSync(join(bin, name), 0o755);
}
// A valid snapshot, 3% full; removing it is nothing to do here.
tool('lvs', 'case "$*" in *lv_attr*) echo "  swi-a-s---" ;; *snap_percent*) echo "  3.00" ;; esac');
tool('lvremove', 'exit 0');

/** The stand-ins first, then this machine's tools. */
const PATH = `${bin}:${process.env.PATH}`;

function sh(command: string, input = '', path = PATH) {
  return spawnSync('sh', ['-c', command], { input, encoding: 'utf8', maxBuffer: 64 * MiB, env: { PATH: path } });
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** The disk as it is at each backup: random data, then 1% of its 4 KiB blocks rewritten here and there. */
const disk0 = randomBytes(DATA_BYTES);
const disk1 = Buffer.from(disk0);
for (let i = 0; i < DATA_BYTES / 4096 / 100; i++) randomBytes(4096).copy(disk1, Math.floor(Math.random() * (DATA_BYTES / 4096)) * 4096);

const state = webCluster(DATA_BYTES);
const config = backupConfig(backups);

function listing(): BackupEntry[] {
  const r = sh(listingCommand(backups));
  assert.equal(r.status, 0, r.stderr);
  return parseListing('pm-2', backups, r.stdout).entries;
}

/** Runs the capture step of a backup of `disk` (read in place of the snapshot). */
function capture(disk: Buffer, stamp: string, kind: BackupKind, zstd: boolean, path = PATH) {
  const image = join(dir, `disk-${stamp}`);
  writeFileSync(image, disk);
  const plan = planBackup(state, config, { vm: 'web', kind, compression: zstd ? 'zstd' : undefined, node: undefined },
    { entries: listing(), stamp, agent: false, pmcVersion: 'test' });
  const step = plan.steps.at(-1)!;
  const r = sh(step.command.replaceAll(`if=${SNAPSHOT}`, `if=${image}`), (step.input as { text: string }).text, path);
  rmSync(image);
  return r;
}

const files = () => readdirSync(join(backups, 'web')).filter((f) => !f.startsWith('.')).sort();

test('zstd and xdelta3 are installed here (apt-get install zstd xdelta3)', () => {
  for (const name of ['zstd', 'xdelta3']) assert.equal(sh(`command -v ${name}`).status, 0, `${name} is missing`);
});

describe('a compressed full image and an increment against it, with the real tools', () => {
  test('-b --zstd writes <stamp>.base.zst that decompresses to the disk, with its manifest', () => {
    const r = capture(disk0, '2026-12-02-08-00-00', 'full', true);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(files(), ['2026-12-02-08-00-00.base.zst', '2026-12-02-08-00-00.json']);
    const file = join(backups, 'web', '2026-12-02-08-00-00.base.zst');
    const manifest = JSON.parse(readFileSync(join(backups, 'web', '2026-12-02-08-00-00.json'), 'utf8'));
    assert.deepEqual([manifest.compression, manifest.file.name, manifest.data.bytes, manifest.data.sha256, manifest.file.sha256],
      ['zstd', '2026-12-02-08-00-00.base.zst', DATA_BYTES, sha256(disk0), sha256(readFileSync(file))]);
    assert.equal(sh(`zstd -q -dc < '${file}' | sha256sum | cut -c1-64`).stdout.trim(), sha256(disk0));
    const [entry] = listing();
    assert.deepEqual([entry!.kind, entry!.compression, entry!.manifest?.compression], ['full', 'zstd', 'zstd']);
  });

  test('an increment is computed against the compressed full image, read through a pipe', () => {
    const r = capture(disk1, '2026-12-02-09-00-00', 'incremental', false);
    assert.equal(r.status, 0, r.stderr);
    const increment = listing().find((e) => e.kind === 'incremental')!;
    assert.deepEqual([increment.base, increment.manifest?.data.sha256], ['2026-12-02-08-00-00', sha256(disk1)]);
    // The changed blocks and xdelta3's overhead, not a copy of the disk.
    assert.ok(increment.bytes < DATA_BYTES / 20, `${increment.bytes} bytes`);
  });

  test('backup verify decompresses the full image and decodes the increment: both good', () => {
    const rows = planVerify(listing()).map((check) => {
      const r = sh(check.command!);
      return judge(check, r.status, r.stdout, r.stderr);
    });
    assert.deepEqual(rows.map((row) => [row.stamp, row.status]), [['2026-12-02-08-00-00', 'good'], ['2026-12-02-09-00-00', 'good']], JSON.stringify(rows));
  });

  for (const [at, disk] of [['2026-12-02-08-00-00', disk0], ['2026-12-02-09-00-00', disk1]] as const) {
    test(`vm restore of ${at} writes the disk's exact bytes and checks them`, () => {
      const device = join(dir, 'restored');
      writeFileSync(device, '');
      const step = writeStep(state, 'pm-2', device, restoreSource(selectBackup(listing(), 'web', at, 'pm-2', ['pm-1', 'pm-2'])));
      const r = sh(step.command);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`PMC-RESTORED ${sha256(disk)}`));
      assert.equal(sha256(readFileSync(device)), sha256(disk));
    });
  }

  test('a compressed image that does not decompress to the data is not kept', () => {
    // zstd that writes a cut-off image and says it succeeded (a disk that filled up unnoticed).
    const cutting = join(dir, 'cutting');
    mkdirSync(cutting);
    const zstd = sh('command -v zstd').stdout.trim();
    writeFileSync(join(cutting, 'zstd'), `#!/bin/sh\nif [ "$2" = -T0 ]; then ${zstd} "$@" | { head -c 100000; cat > /dev/null; }; exit 0; fi\nexec ${zstd} "$@"\n`);
    chmodSync(join(cutting, 'zstd'), 0o755);
    const before = files();
    const r = capture(disk1, '2026-12-02-10-00-00', 'full', true, `${cutting}:${PATH}`);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /the compressed image does not decompress to the data read/);
    assert.deepEqual(files(), before);
  });

  test('a damaged compressed full image: verify says bad, and no increment is made against it', () => {
    const file = join(backups, 'web', '2026-12-02-08-00-00.base.zst');
    const data = readFileSync(file);
    data[data.length - 1000] ^= 0xff;
    writeFileSync(file, data);
    const check = planVerify(listing()).find((c) => c.entry.stamp === '2026-12-02-08-00-00')!;
    const v = sh(check.command!);
    assert.equal(judge(check, v.status, v.stdout, v.stderr).status, 'bad');
    const before = files();
    const r = capture(disk1, '2026-12-02-11-00-00', 'incremental', false);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /does not decompress: no increment against it/);
    assert.deepEqual(files(), before);
  });
});

/** A PATH with every tool of this machine's but `name`, as on a node without it. */
function pathWithout(name: string): string {
  const farm = join(dir, `without-${name}`);
  mkdirSync(farm);
  for (const d of (process.env.PATH ?? '').split(':')) {
    if (!existsSync(d)) continue;
    for (const tool of readdirSync(d)) if (tool !== name && !existsSync(join(farm, tool))) symlinkSync(join(d, tool), join(farm, tool));
  }
  return `${bin}:${farm}`;
}

describe('a full image as the disk\'s bytes, its sha256 by openssl or, on a node without it, by sha256sum', () => {
  const manifestOf = (stamp: string) => JSON.parse(readFileSync(join(backups, 'web', `${stamp}.json`), 'utf8'));
  // sha256sum that fails: the sha256 of this run can only come from openssl.
  const noSha256sum = join(dir, 'no-sha256sum');
  const withoutOpenssl = pathWithout('openssl');

  test('this machine has openssl, so the test without it means something', () => {
    assert.equal(sh('command -v openssl').status, 0);
    assert.notEqual(sh('command -v openssl', '', withoutOpenssl).status, 0);
  });

  test('-b writes <stamp>.base, the disk\'s bytes; the manifest gives their sha256 as the data\'s and the file\'s', () => {
    rmSync(join(backups, 'web'), { recursive: true, force: true });
    mkdirSync(noSha256sum);
    writeFileSync(join(noSha256sum, 'sha256sum'), '#!/bin/sh\nexit 1\n');
    chmodSync(join(noSha256sum, 'sha256sum'), 0o755);
    const r = capture(disk0, '2026-12-03-08-00-00', 'full', false, `${noSha256sum}:${PATH}`);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(files(), ['2026-12-03-08-00-00.base', '2026-12-03-08-00-00.json']);
    assert.ok(readFileSync(join(backups, 'web', '2026-12-03-08-00-00.base')).equals(disk0));
    const m = manifestOf('2026-12-03-08-00-00');
    assert.deepEqual([m.data.bytes, m.data.sha256, m.file.bytes, m.file.sha256], [DATA_BYTES, sha256(disk0), DATA_BYTES, sha256(disk0)]);
  });

  test('without openssl, sha256sum gives the same sha256 in the manifest', () => {
    const r = capture(disk0, '2026-12-03-09-00-00', 'full', false, withoutOpenssl);
    assert.equal(r.status, 0, r.stderr);
    const m = manifestOf('2026-12-03-09-00-00');
    assert.deepEqual([m.data.sha256, m.file.sha256], [sha256(disk0), sha256(disk0)]);
  });

  test('an increment, verify and restore hash the same with openssl and without it', () => {
    const r = capture(disk1, '2026-12-03-10-00-00', 'incremental', false, withoutOpenssl);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(manifestOf('2026-12-03-10-00-00').data.sha256, sha256(disk1));
    for (const path of [`${noSha256sum}:${PATH}`, withoutOpenssl]) {
      const rows = planVerify(listing()).map((check) => {
        const v = sh(check.command!, '', path);
        return judge(check, v.status, v.stdout, v.stderr);
      });
      assert.deepEqual(rows.map((row) => row.status), ['good', 'good', 'good'], JSON.stringify(rows));
      const device = join(dir, 'restored');
      writeFileSync(device, '');
      const step = writeStep(state, 'pm-2', device, restoreSource(selectBackup(listing(), 'web', '2026-12-03-10-00-00', 'pm-2', ['pm-1', 'pm-2'])));
      const w = sh(step.command, '', path);
      assert.equal(w.status, 0, w.stderr);
      assert.match(w.stdout, new RegExp(`PMC-RESTORED ${sha256(disk1)}`));
    }
  });
});
