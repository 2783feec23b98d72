// Backups of a shared-storage VM's file, run by a real POSIX shell with the real dd, xdelta3,
// flock and sha256 tools on files in a temporary directory, and a stand-in virsh that keeps the
// domain's disk (the file, or the overlay once a snapshot is taken) in a state directory and
// logs every call: the overlay is merged back and removed whether the backup succeeds, fails or
// is interrupted; a merge that fails leaves the overlay (it holds the guest's writes), says how
// to repair, and the next backup refuses; no failure leaves a file that looks like a backup.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, beforeEach, describe, test } from 'node:test';
import { overlayFile, planBackup } from '../../../src/ops/backup/backup-plan.js';
import { listingCommand, parseListing, selectBackup, type BackupEntry, type BackupKind } from '../../../src/ops/backup/catalog.js';
import { planRestoreInPlace, restoreSource } from '../../../src/ops/backup/restore-plan.js';
import type { Step } from '../../../src/ops/engine/plan.js';
import { backupConfig, sharedCluster } from './backup-web.js';

const MiB = 1024 ** 2;
const dir = mkdtempSync(join(tmpdir(), 'pmc-backup-shared-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const bin = join(dir, 'bin');
const virshState = join(dir, 'virsh');
const shared = join(dir, 'shared');
const backups = join(dir, 'backups');
const file = join(shared, 'files.img');
const overlay = overlayFile(file, 'files');
for (const d of [bin, virshState, shared]) mkdirSync(d);

function tool(path: string, body: string): void {
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
}
// libvirt as far as a backup sees it: the domain's state, its disk's source, an external
// snapshot that makes a new overlay its disk, a block commit that makes the file its disk again.
tool(join(bin, 'virsh'), `S='${virshState}'
echo "$*" >> "$S/log"
case "$1" in
  domstate) cat "$S/state" ;;
  domblklist) printf ' Target   Source\\n------------------------------------------------\\n vda      %s\\n sda      -\\n' "$(cat "$S/disk")" ;;
  snapshot-create-as)
    o=
    for a in "$@"; do case "$a" in vda,snapshot=external,file=*) o=\${a#vda,snapshot=external,file=} ;; esac; done
    [ -n "$o" ] && [ ! -e "$o" ] || { echo "error: bad --diskspec or $o exists" >&2; exit 1; }
    : > "$o"
    if [ -e "$S/fail-snapshot" ]; then echo 'error: Guest agent is not responding' >&2; exit 1; fi
    echo "$o" > "$S/disk" ;;
  blockcommit)
    if [ -e "$S/fail-commit" ]; then echo 'error: block commit failed' >&2; exit 1; fi
    cat "$S/file" > "$S/disk" ;;
  *) exit 1 ;;
esac`);

const PATH = `${bin}:${process.env.PATH}`;
function sh(command: string, input = '', path = PATH) {
  return spawnSync('sh', ['-c', command], { input, encoding: 'utf8', maxBuffer: 64 * MiB, env: { PATH: path } });
}
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const virsh = (name: string) => readFileSync(join(virshState, name), 'utf8').trim();
const commits = () => virsh('log').split('\n').filter((l) => l.startsWith('blockcommit')).length;

function listing(): BackupEntry[] {
  const r = sh(listingCommand(backups));
  assert.equal(r.status, 0, r.stderr);
  return parseListing('pm-2', backups, r.stdout).entries;
}
const backupFiles = () => (existsSync(join(backups, 'files')) ? readdirSync(join(backups, 'files')).filter((f) => f !== '.lock').sort() : []);

/** The domain runs on pm-2 from its file, as libvirt would say; no backup yet. */
function reset(disk: Buffer): void {
  rmSync(backups, { recursive: true, force: true });
  rmSync(overlay, { force: true });
  for (const f of readdirSync(virshState)) rmSync(join(virshState, f));
  writeFileSync(file, disk);
  writeFileSync(join(virshState, 'state'), 'running\n');
  writeFileSync(join(virshState, 'file'), `${file}\n`);
  writeFileSync(join(virshState, 'disk'), `${file}\n`);
  writeFileSync(join(virshState, 'log'), '');
}

/** A backup planned as pmc plans it, with the domain running on pm-2 or shut off everywhere. */
function plan(stamp: string, kind: BackupKind, running = true, fileBytes = statSync(file).size) {
  return planBackup(sharedCluster(file, running ? 'pm-2' : undefined), backupConfig(backups), { vm: 'files', kind, compression: undefined, node: undefined },
    { entries: listing(), stamp, agent: false, sharedFileBytes: fileBytes, pmcVersion: 'test' });
}

/** Runs a plan's steps in order as the engine does, stopping at the first that fails. */
function run(steps: readonly Step[], path = PATH) {
  let last;
  for (const step of steps) {
    last = sh(step.command, step.input && 'text' in step.input ? step.input.text : '', path);
    if (last.status !== 0) return last;
  }
  return last!;
}

const disk0 = randomBytes(6 * MiB);
const disk1 = Buffer.from(disk0);
randomBytes(64 * 1024).copy(disk1, 3 * MiB);

describe('a running shared VM', () => {
  beforeEach(() => reset(disk0));

  test('a full backup reads the file while the overlay takes the writes, then merges it back and removes it', () => {
    const r = run(plan('2026-12-03-08-00-00', 'full').steps);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(backupFiles(), ['2026-12-03-08-00-00.base', '2026-12-03-08-00-00.json']);
    assert.ok(readFileSync(join(backups, 'files', '2026-12-03-08-00-00.base')).equals(disk0));
    const [entry] = listing();
    assert.deepEqual([entry!.manifest?.data.sha256, entry!.manifest?.source], [sha256(disk0), { file }]);
    assert.deepEqual([virsh('disk'), existsSync(overlay), commits()], [file, false, 1]);
    assert.match(virsh('log'), /snapshot-create-as uuid-of-files --name pmc-backup --disk-only --atomic --no-metadata --diskspec vda,snapshot=external,file=\S+\.files\.pmc-backup\.qcow2 --diskspec sda,snapshot=no/);
  });

  test('an increment against that full image, with the overlay merged back after it too', () => {
    assert.equal(run(plan('2026-12-03-08-00-00', 'full').steps).status, 0);
    writeFileSync(file, disk1);
    const r = run(plan('2026-12-03-09-00-00', 'incremental').steps);
    assert.equal(r.status, 0, r.stderr);
    const increment = listing().find((e) => e.kind === 'incremental')!;
    assert.deepEqual([increment.base, increment.manifest?.data.sha256], ['2026-12-03-08-00-00', sha256(disk1)]);
    assert.ok(increment.bytes < disk1.length / 10, `${increment.bytes} bytes`);
    assert.deepEqual([virsh('disk'), existsSync(overlay), commits()], [file, false, 2]);
  });

  test('a backup that fails after the overlay was taken merges it back and removes it, and leaves no backup', () => {
    // The file is 4 KiB shorter than planned: it changed size, the read is short.
    const r = run(plan('2026-12-03-08-00-00', 'full', true, disk0.length + 4096).steps);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /changed size while it was read: no backup/);
    assert.deepEqual([virsh('disk'), existsSync(overlay), commits()], [file, false, 1]);
    assert.deepEqual(backupFiles(), []);
  });

  test('a backup interrupted while it reads (TERM) merges the overlay back and leaves no backup', () => {
    // dd that is interrupted: the shell that runs it gets TERM.
    const interrupted = join(dir, 'interrupted');
    mkdirSync(interrupted, { recursive: true });
    tool(join(interrupted, 'dd'), 'kill -TERM $PPID\nexit 1');
    const [take, capture] = plan('2026-12-03-08-00-00', 'full').steps;
    assert.equal(run([take!]).status, 0);
    assert.equal(virsh('disk'), overlay);
    const r = run([capture!], `${interrupted}:${PATH}`);
    assert.equal(r.status, 143, r.stderr);
    assert.deepEqual([virsh('disk'), existsSync(overlay), commits()], [file, false, 1]);
    assert.deepEqual(backupFiles(), []);
  });

  test('the overlay step\'s undo (a later step never ran) merges it back; run again, it only removes a stray overlay', () => {
    const [take] = plan('2026-12-03-08-00-00', 'full').steps;
    assert.equal(run([take!]).status, 0);
    assert.equal(sh(take!.undo!.command).status, 0);
    assert.deepEqual([virsh('disk'), existsSync(overlay), commits()], [file, false, 1]);
    writeFileSync(overlay, '');
    assert.equal(sh(take!.undo!.command).status, 0);
    assert.deepEqual([existsSync(overlay), commits()], [false, 1]);
  });

  test('a snapshot that fails leaves no overlay file and the disk as it was', () => {
    writeFileSync(join(virshState, 'fail-snapshot'), '');
    const r = run(plan('2026-12-03-08-00-00', 'full').steps);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /Guest agent is not responding/);
    assert.deepEqual([virsh('disk'), existsSync(overlay), commits()], [file, false, 0]);
    assert.deepEqual(backupFiles(), []);
  });

  test('a merge that fails: the backup fails loudly with the repair, the overlay stays (it holds the writes), the next backup refuses', () => {
    writeFileSync(join(virshState, 'fail-commit'), '');
    const r = run(plan('2026-12-03-08-00-00', 'full').steps);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /PMC: files still runs on the backup overlay \S+: merging it back into \S+ failed\. Repair on pm-2: virsh blockcommit uuid-of-files vda --active --pivot --wait && rm -f -- \S+\.files\.pmc-backup\.qcow2/);
    assert.match(r.stderr, /merge the overlay \S+ back and remove it: failed, the backup is not kept/);
    // Tried once, not again by the exit trap.
    assert.deepEqual([virsh('disk'), existsSync(overlay), commits()], [overlay, true, 1]);
    assert.deepEqual(backupFiles(), []);
    const next = run(plan('2026-12-03-09-00-00', 'full').steps);
    assert.notEqual(next.status, 0);
    assert.match(next.stderr, /files runs on \S+ already, left by a backup whose merge failed: repair on pm-2: virsh blockcommit/);
    assert.deepEqual([virsh('disk'), existsSync(overlay), commits()], [overlay, true, 1]);
    // The repair it names, then a backup works again.
    rmSync(join(virshState, 'fail-commit'));
    const repair = /repair on pm-2: (.*)$/m.exec(next.stderr)![1]!;
    assert.equal(sh(repair).status, 0);
    assert.equal(run(plan('2026-12-03-10-00-00', 'full').steps).status, 0);
    assert.deepEqual([virsh('disk'), existsSync(overlay)], [file, false]);
  });
});

describe('a shut-off shared VM', () => {
  beforeEach(() => {
    reset(disk0);
    writeFileSync(join(virshState, 'state'), 'shut off\n');
  });

  test('its file is read directly: no snapshot, no merge', () => {
    const r = run(plan('2026-12-03-08-00-00', 'full', false).steps);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(listing()[0]!.manifest?.consistency, 'shut-off');
    assert.ok(readFileSync(join(backups, 'files', '2026-12-03-08-00-00.base')).equals(disk0));
    assert.doesNotMatch(virsh('log'), /snapshot-create-as|blockcommit/);
  });

  test('started since the plan was made: refused on the node before anything is read', () => {
    const steps = plan('2026-12-03-08-00-00', 'full', false).steps;
    writeFileSync(join(virshState, 'state'), 'running\n');
    const r = run(steps);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /files is running here: its file is not read under it/);
    assert.deepEqual(backupFiles(), []);
  });
});

describe('vm restore onto a shared VM\'s file', () => {
  const tmp = `${file}.pmc-restore.tmp`;
  const restorePlan = (at: string) => planRestoreInPlace(sharedCluster(file, undefined), { ignorePrefix: 'ignore' }, 'files',
    restoreSource(selectBackup(listing(), 'files', at, 'pm-2', ['pm-1', 'pm-2', 'pm-3'])));

  test('writes the backup\'s bytes beside the file, reads them back, keeps the mode and renames it over the file', () => {
    reset(disk0);
    assert.equal(run(plan('2026-12-03-08-00-00', 'full').steps).status, 0);
    writeFileSync(file, disk1);
    chmodSync(file, 0o640);
    writeFileSync(join(virshState, 'state'), 'shut off\n');
    const r = run(restorePlan('2026-12-03-08-00-00').steps);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(readFileSync(file).equals(disk0));
    assert.equal(statSync(file).mode & 0o777, 0o640);
    assert.equal(existsSync(tmp), false);
  });

  test('a restore that fails its read-back leaves the file as it was, and its undo removes the partial new file', () => {
    const full = join(backups, 'files', '2026-12-03-08-00-00.base');
    const damaged = readFileSync(full);
    damaged[1000] ^= 0xff;
    writeFileSync(full, damaged);
    writeFileSync(file, disk1);
    const steps = restorePlan('2026-12-03-08-00-00').steps;
    const r = run(steps);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /read back, the disk's sha256 is [0-9a-f]{64}, the backup's manifest says/);
    assert.ok(readFileSync(file).equals(disk1));
    // The engine takes back the completed first step.
    assert.equal(sh(steps[0]!.undo!.command).status, 0);
    assert.equal(existsSync(tmp), false);
  });
});
