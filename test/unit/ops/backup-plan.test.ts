// The backup and restore planners on cluster states built from probe facts: where a disk is
// read, what is refused, that no step changes a DRBD role, and where a restore writes.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildCluster, type ClusterState } from '../../../src/model/cluster.js';
import { backupSource, planBackup, snapshotBytes, type BackupFacts } from '../../../src/ops/backup/backup-plan.js';
import { decodeCommand, planRestoreInPlace, restoreSource, writeStep } from '../../../src/ops/backup/restore-plan.js';
import { planVerify, judge } from '../../../src/ops/backup/verify.js';
import { sha256Command, type BackupEntry } from '../../../src/ops/backup/catalog.js';
import { drbdUsableBytes } from '../../../src/ops/vm/add-plan.js';
import type { NodeFacts } from '../../../src/probe/types.js';
import { PmcError } from '../../../src/util/errors.js';
import { CONFIG, domain, lv, pairedVm, peer, probes, resource, SHARED_CONFIG, sharedVm } from '../model/factory.js';
import { sharedCluster } from './backup-web.js';
import { refuses } from '../refusal.js';

const NODES = ['pm-1', 'pm-2', 'pm-3'];
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const PLANNER_CONFIG = {
  ignorePrefix: 'ignore',
  storage: { volumeGroup: 'vg-pmc', drbd: { minors: { first: 10, last: 99 }, ports: { first: 7788, last: 7888 }, resyncRate: '100M' } },
  backups: { directory: '/pmc-vm-backup', retention: { full: 2, incremental: 14 } },
};

function cluster(...parts: Record<string, Partial<NodeFacts>>[]): ClusterState {
  return buildCluster(CONFIG, probes(NODES, ...parts));
}


const FACTS: BackupFacts = { entries: [], stamp: '2026-12-02-08-00-00', agent: false, pmcVersion: '0.1.0' };

function full(node: string, stamp: string): BackupEntry {
  return { vm: 'web', node, stamp, kind: 'full', compression: undefined, path: `/pmc-vm-backup/web/${stamp}.base`, bytes: GiB, manifest: undefined, manifestProblem: undefined, base: undefined };
}

describe('vm backup planner', () => {
  test('a running VM is read on its standby, from a snapshot of the LV, and no step changes a DRBD role', () => {
    const state = cluster(pairedVm('web', 'pm-1', 'pm-2', 10));
    const plan = planBackup(state, PLANNER_CONFIG, { vm: 'web', kind: 'full', compression: undefined, node: undefined }, FACTS);
    assert.deepEqual(plan.steps.map((s) => s.node), ['pm-2', 'pm-2']);
    assert.match(plan.steps[0]!.command, /drbdadm cstate web.*lvcreate -q -s -L 268435456b -n web_pmcsnap vg-pmc\/web$/s);
    assert.equal(plan.steps[0]!.undo?.command, 'if lvs vg-pmc/web_pmcsnap >/dev/null 2>&1; then lvremove -q -f vg-pmc/web_pmcsnap; fi');
    for (const step of plan.steps) assert.doesNotMatch(step.command, /drbdadm (primary|secondary)|--allow-two-primaries/);
    // dd writes the image itself, as a plain dd would; its sha256 is read back from it.
    assert.match(plan.steps[1]!.command, /dd if=\/dev\/vg-pmc\/web_pmcsnap bs=16M iflag=count_bytes count=1073741824 status=progress of="\$tmp" \|\| fail/);
    assert.match(plan.steps[1]!.command, /dsum=\$\(\{ if command -v openssl .* < "\$tmp" \| cut -c1-64/);
    assert.doesNotMatch(plan.steps[1]!.command, /tee|mkfifo/);
    assert.match(plan.steps[1]!.command, /flock -x -w 600 9/);
    assert.match(plan.title, /^full backup of web on pm-2: \/pmc-vm-backup\/web\/2026-12-02-08-00-00\.base$/);
    assert.ok(plan.notes.some((n) => /no guest agent answered: the backup is crash-consistent/.test(n)));
    const manifest = JSON.parse((plan.steps[1]!.input as { text: string }).text);
    assert.deepEqual([manifest.type, manifest.base, manifest.data.bytes, manifest.consistency], ['full', null, GiB, 'crash-consistent']);
  });

  test('with a guest agent the file systems are frozen around the snapshot, on the node that runs the VM', () => {
    const state = cluster(pairedVm('web', 'pm-1', 'pm-2', 10));
    const plan = planBackup(state, PLANNER_CONFIG, { vm: 'web', kind: 'full', compression: undefined, node: undefined }, { ...FACTS, agent: true });
    assert.deepEqual(plan.steps.map((s) => `${s.node} ${s.command.split(' ')[0]} ${s.command.split(' ')[1]}`), [
      'pm-1 virsh domfsfreeze', 'pm-2 cs=$(drbdadm cstate', 'pm-1 virsh domfsthaw', 'pm-2 set -u\ntmp=/pmc-vm-backup/web/2026-12-02-08-00-00.base.tmp;',
    ]);
    assert.equal(plan.steps[0]!.undo?.command, 'virsh domfsthaw uuid-of-web');
    assert.match(plan.steps[0]!.command, /setsid sh -c 'sleep 30; virsh domfsthaw uuid-of-web'/);
  });

  test('an increment needs a full image on that node and uses the shared lock', () => {
    const state = cluster(pairedVm('web', 'pm-1', 'pm-2', 10));
    refuses('PMC_E_STATE', /no full image of web on pm-2/, () => planBackup(state, PLANNER_CONFIG, { vm: 'web', kind: 'incremental', compression: undefined, node: undefined }, FACTS));
    const plan = planBackup(state, PLANNER_CONFIG, { vm: 'web', kind: 'incremental', compression: undefined, node: undefined },
      { ...FACTS, entries: [full('pm-2', '2026-12-01-00-00-00'), full('pm-2', '2026-12-01-12-00-00'), full('pm-1', '2026-12-02-00-00-00')] });
    // The newest full image on that node, read forward in 16 MiB blocks and given to xdelta3 on fd 3.
    assert.match(plan.steps[1]!.command, /\{ dd if=\/pmc-vm-backup\/web\/2026-12-01-12-00-00\.base bs=16M of=\/dev\/null status=none; echo \$\? > "\$work\/base\.rc"; \} & \{ dd .*\| \{ xdelta3 -e -S none -B 16777216 -W 8388608 -N -C 32,512,4,4,1,18,35 -c -s \/pmc-vm-backup\/web\/2026-12-01-12-00-00\.base > "\$tmp"/);
    assert.match(plan.steps[1]!.command, /the full image \/pmc-vm-backup\/web\/2026-12-01-12-00-00\.base cannot be read: no increment against it/);
    // The data's sha256 by a second reader of the snapshot, beside the one xdelta3 reads from.
    assert.match(plan.steps[1]!.command, /\{ \{ dd if=\/dev\/vg-pmc\/web_pmcsnap bs=16M iflag=count_bytes count=1073741824 status=none \|\| touch "\$work\/failed"; \} \| \{ if command -v openssl .* > "\$work\/data\.sum"; \} &/);
    assert.match(plan.steps[1]!.command, /flock -s -w 600 9/);
  });

  test('-b --zstd writes <stamp>.base.zst under the exclusive lock and records the compression', () => {
    const state = cluster(pairedVm('web', 'pm-1', 'pm-2', 10));
    const plan = planBackup(state, PLANNER_CONFIG, { vm: 'web', kind: 'full', compression: 'zstd', node: undefined }, FACTS);
    assert.match(plan.title, /: \/pmc-vm-backup\/web\/2026-12-02-08-00-00\.base\.zst$/);
    assert.match(plan.steps[1]!.command, /\| \{ zstd -q -T0 -3 -c > "\$tmp" \|\| touch/);
    assert.match(plan.steps[1]!.command, /flock -x -w 600 9/);
    const manifest = JSON.parse((plan.steps[1]!.input as { text: string }).text);
    assert.deepEqual([manifest.compression, manifest.file.name], ['zstd', '2026-12-02-08-00-00.base.zst']);
    const plain = JSON.parse((planBackup(state, PLANNER_CONFIG, { vm: 'web', kind: 'full', compression: undefined, node: undefined }, FACTS).steps[1]!.input as { text: string }).text);
    assert.deepEqual([plain.compression, plain.file.name], [null, '2026-12-02-08-00-00.base']);
  });

  test('a node without zstd: refused before anything runs, naming the node and the fix', () => {
    const noZstd = cluster(pairedVm('web', 'pm-1', 'pm-2', 10), { 'pm-2': { tools: { xdelta3: true, rsync: true, zstd: false } } });
    refuses('PMC_E_STATE', /^pm-2 has no zstd, which compressing web's full image needs$/,
      () => planBackup(noZstd, PLANNER_CONFIG, { vm: 'web', kind: 'full', compression: 'zstd', node: undefined }, FACTS));
    assert.throws(() => planBackup(noZstd, PLANNER_CONFIG, { vm: 'web', kind: 'full', compression: 'zstd', node: undefined }, FACTS),
      (err: unknown) => err instanceof PmcError && err.hint === 'on pm-2: apt-get install zstd; or back up without --zstd');
    const entries = [{ ...full('pm-2', '2026-12-01-00-00-00'), compression: 'zstd' as const, path: '/pmc-vm-backup/web/2026-12-01-00-00-00.base.zst' }];
    refuses('PMC_E_STATE', /^pm-2 has no zstd, which reading the compressed full image \/pmc-vm-backup\/web\/2026-12-01-00-00-00\.base\.zst needs$/,
      () => planBackup(noZstd, PLANNER_CONFIG, { vm: 'web', kind: 'incremental', compression: undefined, node: undefined }, { ...FACTS, entries }));
    // Without --zstd and with a plain full image, zstd is not needed.
    planBackup(noZstd, PLANNER_CONFIG, { vm: 'web', kind: 'incremental', compression: undefined, node: undefined }, { ...FACTS, entries: [full('pm-2', '2026-12-01-00-00-00')] });
  });

  test('an increment against a .base.zst reads it decompressed through a pipe on fd 3', () => {
    const state = cluster(pairedVm('web', 'pm-1', 'pm-2', 10));
    const entries = [{ ...full('pm-2', '2026-12-01-00-00-00'), compression: 'zstd' as const, path: '/pmc-vm-backup/web/2026-12-01-00-00-00.base.zst' }];
    const plan = planBackup(state, PLANNER_CONFIG, { vm: 'web', kind: 'incremental', compression: undefined, node: undefined }, { ...FACTS, entries });
    assert.match(plan.steps[1]!.command, /\{ zstd -q -dc -- \/pmc-vm-backup\/web\/2026-12-01-00-00-00\.base\.zst; echo \$\? > "\$work\/base\.rc"; \} \| \{ .*xdelta3 -e -S none -B 16777216 -W 8388608 -N -C 32,512,4,4,1,18,35 -c -s \/dev\/fd\/3 > "\$tmp".*; \} 3<&0/);
    assert.ok(plan.notes.some((n) => /against \/pmc-vm-backup\/web\/2026-12-01-00-00-00\.base\.zst, decompressed as it is read/.test(n)));
  });

  test('-p reads the primary\'s LV instead; a one-node VM is read on its node from its LV', () => {
    const paired = cluster(pairedVm('web', 'pm-1', 'pm-2', 10));
    assert.equal(backupSource(paired, PLANNER_CONFIG, { vm: 'web', node: 'pm-1' }).node, 'pm-1');
    refuses('PMC_E_USAGE', /web has no disk on pm-3/, () => backupSource(paired, PLANNER_CONFIG, { vm: 'web', node: 'pm-3' }));
    const single = cluster({ 'pm-3': { domains: [domain('solo', 'running')], lvs: [lv('solo', 2 * GiB)] } });
    const source = backupSource(single, PLANNER_CONFIG, { vm: 'solo', node: undefined });
    assert.ok(source.kind === 'lv');
    assert.deepEqual([source.node, source.lv, source.dataBytes, source.drbdDevice], ['pm-3', '/dev/vg-pmc/solo', 2 * GiB, undefined]);
  });

  test('a shared-storage VM as the probe finds it is read from its file on the node that runs it', () => {
    const state = buildCluster(SHARED_CONFIG, probes(NODES, sharedVm('web', NODES, ['pm-1'])));
    const source = backupSource(state, PLANNER_CONFIG, { vm: 'web', node: undefined });
    assert.equal(source.kind, 'shared');
    assert.deepEqual([source.node, source.kind === 'shared' && source.file], ['pm-1', '/var/lib/pmc-shared/web.img']);
  });

  test('refused while the copy may not be current, and when the snapshot does not fit', () => {
    const syncing = cluster(pairedVm('web', 'pm-1', 'pm-2', 10), {
      'pm-2': { drbdResources: [resource('web', 'pm-2', ['pm-1', 'pm-2'], 10, { diskState: 'Inconsistent', peers: [peer('pm-1', { role: 'Primary', replication: 'SyncTarget' })] })] },
    });
    // pairedVm's healthy resource comes first in the merged list; the test overrides it.
    syncing.vms.find((v) => v.name === 'web')!.replicas[1]!.resource = syncing.nodes[1]!.facts!.drbdResources[1];
    refuses('PMC_E_STATE', /not Connected UpToDate\/UpToDate/, () => backupSource(syncing, PLANNER_CONFIG, { vm: 'web', node: undefined }));
    const full = cluster(pairedVm('web', 'pm-1', 'pm-2', 10), { 'pm-2': { vg: { name: 'vg-pmc', sizeBytes: 8 * GiB, freeBytes: 100 * MiB, extentSizeBytes: 4 * MiB } } });
    refuses('PMC_E_CAPACITY', /the snapshot of web needs 256 MiB/, () => planBackup(full, PLANNER_CONFIG, { vm: 'web', kind: 'full', compression: undefined, node: undefined }, FACTS));
    refuses('PMC_E_VM_IGNORED', /ignore-x/, () => planBackup(cluster(pairedVm('ignore-x', 'pm-1', 'pm-2', 11)), PLANNER_CONFIG, { vm: 'ignore-x', kind: 'full', compression: undefined, node: undefined }, FACTS));
  });

  test('snapshot room: a tenth of the disk, at least 256 MiB, never more than the disk, whole extents', () => {
    assert.equal(snapshotBytes(100 * GiB, 4 * MiB), 10 * GiB);
    assert.equal(snapshotBytes(5002 * MiB, 4 * MiB), 504 * MiB);
    assert.equal(snapshotBytes(1 * GiB, 4 * MiB), 256 * MiB);
    assert.equal(snapshotBytes(128 * MiB, 4 * MiB), 128 * MiB);
  });

  test('the capture script renames the manifest before the data and removes the snapshot on every exit', () => {
    const script = planBackup(cluster(pairedVm('web', 'pm-1', 'pm-2', 10)), PLANNER_CONFIG, { vm: 'web', kind: 'full', compression: undefined, node: undefined }, FACTS).steps.at(-1)!.command;
    const [json, base] = ['/pmc-vm-backup/web/2026-12-02-08-00-00.json', '/pmc-vm-backup/web/2026-12-02-08-00-00.base'];
    assert.ok(script.indexOf(`mv -f "$mtmp" ${json}`) < script.indexOf(`mv -f "$tmp" ${base}`));
    assert.match(script, /trap cleanup EXIT/);
    assert.match(script, /release\(\) \{ if lvs vg-pmc\/web_pmcsnap >\/dev\/null 2>&1; then lvremove -q -f vg-pmc\/web_pmcsnap; fi >\/dev\/null 2>&1; \}/);
    assert.match(script, /cleanup\(\) \{[^}]*\|\| release; \}/);
    assert.match(script, /\?\?\?\?I\*\) fail 'the snapshot filled up/);
  });
});

describe('vm backup planner, shared-storage VMs', () => {
  const FILE = '/shared/vms/files.img';
  const OVERLAY = '/shared/vms/.files.pmc-backup.qcow2';
  const request = (node?: string) => ({ vm: 'files', kind: 'full' as const, compression: undefined, node });
  const facts = { ...FACTS, sharedFileBytes: 2 * GiB };

  test('running: read where it runs, while a libvirt overlay beside the file takes the writes; no LV, no DRBD', () => {
    const state = sharedCluster(FILE, 'pm-3');
    // The node's volume group is full: a shared VM needs no snapshot room.
    state.nodes[2]!.facts!.vg = { name: 'vg-pmc', sizeBytes: 8 * GiB, freeBytes: 0, extentSizeBytes: 4 * MiB };
    const plan = planBackup(state, PLANNER_CONFIG, request(), facts);
    assert.deepEqual(plan.steps.map((s) => s.node), ['pm-3', 'pm-3']);
    const [take, capture] = plan.steps;
    assert.match(take!.command, /\nvirsh snapshot-create-as uuid-of-files --name pmc-backup --disk-only --atomic --no-metadata --diskspec vda,snapshot=external,file=\/shared\/vms\/\.files\.pmc-backup\.qcow2 --diskspec sda,snapshot=no \|\| \{ \(/);
    assert.match(take!.undo!.command, /virsh blockcommit uuid-of-files vda --active --pivot --wait >\/dev\/null && rm -f -- \/shared\/vms\/\.files\.pmc-backup\.qcow2/);
    assert.match(capture!.command, /dd if=\/shared\/vms\/files\.img bs=16M iflag=count_bytes count=2147483648 status=progress of="\$tmp"/);
    assert.match(capture!.command, /release\(\) \{ \( if .*virsh blockcommit uuid-of-files vda --active --pivot --wait/);
    for (const step of plan.steps) assert.doesNotMatch(step.command, /lvcreate|lvs |drbdadm/);
    const manifest = JSON.parse((capture!.input as { text: string }).text);
    assert.deepEqual([manifest.source, manifest.data.bytes, manifest.consistency, manifest.node], [{ file: FILE }, 2 * GiB, 'crash-consistent', 'pm-3']);
    assert.equal(plan.title, 'full backup of files on pm-3: /pmc-vm-backup/files/2026-12-02-08-00-00.base');
  });

  test('running with a guest agent: the overlay is taken with the file systems quiesced', () => {
    const plan = planBackup(sharedCluster(FILE, 'pm-3'), PLANNER_CONFIG, request(), { ...facts, agent: true });
    assert.equal(plan.steps.length, 2);
    assert.match(plan.steps[0]!.command, /--no-metadata --quiesce --diskspec vda,/);
    assert.equal(JSON.parse((plan.steps[1]!.input as { text: string }).text).consistency, 'file-systems-frozen');
  });

  test('running: -p another node is refused; an increment needs a full image on the node it runs on', () => {
    const state = sharedCluster(FILE, 'pm-3');
    refuses('PMC_E_USAGE', /^files runs on pm-3: a running shared VM is backed up where it runs/, () => planBackup(state, PLANNER_CONFIG, request('pm-1'), facts));
    const onPm1 = { ...full('pm-1', '2026-12-01-00-00-00'), vm: 'files', path: '/pmc-vm-backup/files/2026-12-01-00-00-00.base' };
    refuses('PMC_E_STATE', /no full image of files on pm-3/, () => planBackup(state, PLANNER_CONFIG, { ...request(), kind: 'incremental' }, { ...facts, entries: [onPm1] }));
    const plan = planBackup(state, PLANNER_CONFIG, { ...request(), kind: 'incremental' }, { ...facts, entries: [onPm1, { ...onPm1, node: 'pm-3' }] });
    assert.match(plan.steps[1]!.command, /xdelta3 -e .* -s \/pmc-vm-backup\/files\/2026-12-01-00-00-00\.base > "\$tmp"/);
  });

  test('shut off: read from the file on the first node that defines it, or any with -p, once every node has answered', () => {
    const state = sharedCluster(FILE, undefined);
    const plan = planBackup(state, PLANNER_CONFIG, request(), facts);
    assert.deepEqual(plan.steps.map((s) => s.node), ['pm-1', 'pm-1']);
    assert.match(plan.steps[0]!.command, /virsh domstate uuid-of-files.*\n\[ -f \/shared\/vms\/files\.img \]/s);
    for (const step of plan.steps) assert.doesNotMatch(step.command, /snapshot-create-as|blockcommit/);
    assert.equal(JSON.parse((plan.steps[1]!.input as { text: string }).text).consistency, 'shut-off');
    assert.equal(planBackup(state, PLANNER_CONFIG, request('pm-3'), facts).steps[1]!.node, 'pm-3');
    state.nodes[1]!.reachable = false;
    refuses('PMC_E_NODE_UNREACHABLE', /^pm-2 could not be asked: files might run there/, () => planBackup(state, PLANNER_CONFIG, request(), facts));
  });

  test('a domain still on the overlay (a merge that failed): refused, with the repair', () => {
    const state = sharedCluster(FILE, 'pm-2');
    state.vms[0]!.replicas[1]!.domain!.disks[0]!.source = OVERLAY;
    assert.throws(() => planBackup(state, PLANNER_CONFIG, request(), facts), (err: unknown) => err instanceof PmcError && err.code === 'PMC_E_STATE'
      && /files's disk on pm-2 is still the backup overlay \/shared\/vms\/\.files\.pmc-backup\.qcow2: merging it back into \/shared\/vms\/files\.img failed/.test(err.message)
      && err.hint === `on pm-2: virsh blockcommit uuid-of-files vda --active --pivot --wait && rm -f -- ${OVERLAY}`);
  });
});

describe('restore planner', () => {
  const entry = (node: string): BackupEntry => ({
    ...full(node, '2026-12-01-00-00-00'),
    bytes: drbdUsableBytes(GiB),
  });

  test('onto its own disk: refused while the VM runs', () => {
    const state = cluster(pairedVm('web', 'pm-1', 'pm-2', 10));
    const source = restoreSource({ target: entry('pm-2'), full: entry('pm-2'), increment: undefined });
    refuses('PMC_E_STATE', /web runs on pm-1: its disk cannot be restored under it/, () => planRestoreInPlace(state, PLANNER_CONFIG, 'web', source));
  });

  test('onto its own disk when off: promote where the backup is, write through DRBD, read back, demote again', () => {
    const parts = pairedVm('web', 'pm-1', 'pm-2', 10);
    parts['pm-1']!.domains = [domain('web', 'shut off', { minor: 10 })];
    parts['pm-1']!.drbdResources = [resource('web', 'pm-1', ['pm-1', 'pm-2'], 10)];
    const state = cluster(parts);
    const source = restoreSource({ target: entry('pm-2'), full: entry('pm-2'), increment: undefined });
    const plan = planRestoreInPlace(state, PLANNER_CONFIG, 'web', source);
    assert.deepEqual(plan.steps.map((s) => `${s.node} ${s.command.split('\n')[0]}`), [
      'pm-2 drbdadm primary web',
      'pm-2 work=$(mktemp -d) && trap \'rm -rf "$work"\' EXIT || exit 1',
      'pm-2 drbdadm secondary web',
    ]);
    assert.match(plan.steps[1]!.command, /cat -- \/pmc-vm-backup\/web\/2026-12-01-00-00-00\.base; \} 2>"\$work\/err" \|\| touch "\$work\/failed"; \} \| dd of=\/dev\/drbd10 /);
    assert.ok(plan.notes.some((n) => /old-tool full image without manifest: there is no checksum/.test(n)));
  });
});

describe('restore planner, shared-storage VMs', () => {
  const FILE = '/shared/vms/files.img';
  const backup = { ...full('pm-2', '2026-12-01-00-00-00'), vm: 'files', path: '/pmc-vm-backup/files/2026-12-01-00-00-00.base' };
  const source = restoreSource({ target: backup, full: backup, increment: undefined });

  test('refused while it runs anywhere, or while a node cannot say', () => {
    refuses('PMC_E_STATE', /^files runs on pm-3: its disk cannot be restored under it$/, () => planRestoreInPlace(sharedCluster(FILE, 'pm-3'), PLANNER_CONFIG, 'files', source));
    const state = sharedCluster(FILE, undefined);
    state.nodes[2]!.reachable = false;
    refuses('PMC_E_NODE_UNREACHABLE', /^pm-3 could not be asked: files might run there/, () => planRestoreInPlace(state, PLANNER_CONFIG, 'files', source));
  });

  test('shut off: written as a new file beside the disk where the backup is, read back, then renamed over it', () => {
    const plan = planRestoreInPlace(sharedCluster(FILE, undefined), PLANNER_CONFIG, 'files', source);
    assert.deepEqual(plan.steps.map((s) => s.node), ['pm-2', 'pm-2', 'pm-2']);
    const [check, write, rename] = plan.steps;
    assert.equal(check!.undo!.command, 'rm -f -- /shared/vms/files.img.pmc-restore.tmp');
    assert.match(write!.command, /\| dd of=\/shared\/vms\/files\.img\.pmc-restore\.tmp bs=16M /);
    assert.match(write!.command, /dd if=\/shared\/vms\/files\.img\.pmc-restore\.tmp bs=16M iflag=count_bytes,direct/);
    assert.equal(rename!.command, 'chown --reference=/shared/vms/files.img -- /shared/vms/files.img.pmc-restore.tmp && chmod --reference=/shared/vms/files.img -- /shared/vms/files.img.pmc-restore.tmp'
      + ' && mv -f -- /shared/vms/files.img.pmc-restore.tmp /shared/vms/files.img && sync -- /shared/vms/');
    for (const step of plan.steps) assert.doesNotMatch(step.command, /drbdadm/);
  });
});

describe('restoring and verifying a .base.zst', () => {
  const zst: BackupEntry = { ...full('pm-2', '2026-12-01-00-00-00'), compression: 'zstd', path: '/pmc-vm-backup/web/2026-12-01-00-00-00.base.zst', bytes: 1000 };
  const inc: BackupEntry = { ...full('pm-2', '2026-12-01-06-00-00'), kind: 'incremental', path: '/pmc-vm-backup/web/2026-12-01-06-00-00.xdelta3', base: zst.stamp };

  test('decompressed as it is read; an increment gets it on stdin with the window it was made with', () => {
    assert.equal(decodeCommand({ target: zst, full: zst, increment: undefined }), 'zstd -q -dc -- /pmc-vm-backup/web/2026-12-01-00-00-00.base.zst');
    const made = (window: number): BackupEntry => ({ ...inc, manifest: { xdelta3SourceWindow: window } as BackupEntry['manifest'] });
    for (const window of [16 * 1024 ** 2, 64 * 1024 ** 2]) {
      assert.equal(decodeCommand({ target: made(window), full: zst, increment: made(window) }),
        `zstd -q -dc -- /pmc-vm-backup/web/2026-12-01-00-00-00.base.zst | xdelta3 -d -B ${window} -c -s /dev/stdin /pmc-vm-backup/web/2026-12-01-06-00-00.xdelta3`);
    }
    // Without a readable manifest: the largest window pmc made increments with.
    assert.match(decodeCommand({ target: inc, full: zst, increment: inc }), / xdelta3 -d -B 67108864 -c -s \/dev\/stdin /);
  });

  test('refused on a node without zstd, and without a manifest (the size of its data is unknown)', () => {
    const noZstd = cluster(pairedVm('web', 'pm-1', 'pm-2', 10), { 'pm-2': { tools: { xdelta3: true, rsync: true, zstd: false } } });
    const source = { chain: { target: inc, full: zst, increment: inc }, node: 'pm-2', dataBytes: GiB, expectedSha256: undefined };
    refuses('PMC_E_STATE', /^pm-2 has no zstd, which reading the compressed full image \/pmc-vm-backup\/web\/2026-12-01-00-00-00\.base\.zst needs$/,
      () => writeStep(noZstd, 'pm-2', '/dev/drbd10', source));
    refuses('PMC_E_STATE', /has no readable manifest, so the size of its data is unknown/, () => restoreSource({ target: zst, full: zst, increment: undefined }));
  });

  test('verify compares the decompressed data with the manifest', () => {
    const a = 'a'.repeat(64);
    const b = 'b'.repeat(64);
    const manifest = { file: { name: '2026-12-01-00-00-00.base.zst', bytes: 1000, sha256: a }, data: { bytes: GiB, sha256: b } } as BackupEntry['manifest'];
    const [check] = planVerify([{ ...zst, manifest }]);
    assert.match(check!.command!, /zstd -q -dc -- \/pmc-vm-backup\/web\/2026-12-01-00-00-00\.base\.zst; \} 2>"\$f\.err"/);
    assert.equal(judge(check!, 0, `${a}\n${b}\n`, '').status, 'good');
    assert.match(judge(check!, 0, `${a}\n${a}\n`, '').detail, /^decompressed \(zstd\), the disk's sha256 is a+, the manifest says b+$/);
  });
});

describe('backup verify', () => {
  test('an old-tool increment decodes against the newest older full image; a missing one is bad', () => {
    const base = full('pm-2', '2026-12-01-00-00-00');
    const inc: BackupEntry = { ...base, stamp: '2026-12-01-06-00-00', kind: 'incremental', path: '/pmc-vm-backup/web/2026-12-01-06-00-00.xdelta3', base: base.stamp };
    const [fullCheck, incCheck, orphanCheck] = planVerify([base, inc, { ...inc, node: 'pm-3' }]);
    assert.equal(fullCheck!.command, sha256Command('/pmc-vm-backup/web/2026-12-01-00-00-00.base'));
    assert.match(incCheck!.command!, /xdelta3 -d -c -s \/pmc-vm-backup\/web\/2026-12-01-00-00-00\.base \/pmc-vm-backup\/web\/2026-12-01-06-00-00\.xdelta3/);
    const a = 'a'.repeat(64);
    assert.equal(judge(fullCheck!, 0, `${a}\n`, '').status, 'read');
    assert.equal(judge(incCheck!, 0, `${a}\n${a}\n`, '').status, 'good');
    assert.match(judge(incCheck!, 1, `${a}\n${a}\nxdelta3: target window checksum mismatch: XD3_INVALID_INPUT\n`, '').detail, /decoding against 2026-12-01-00-00-00 failed: xdelta3: target window checksum mismatch/);
    assert.equal(judge(orphanCheck!, null, '', '').status, 'bad');
  });

  test('an increment changed since it was written is reported by its sha256, not by the decode that fails on it', () => {
    const base = full('pm-2', '2026-12-01-00-00-00');
    const [a, b] = ['a'.repeat(64), 'b'.repeat(64)];
    const manifest = {
      format: 'pmc-backup/1', vm: 'web', node: 'pm-2', stamp: '2026-12-01-06-00-00', time: '2026-12-01T06:00:00Z', type: 'incremental', base: base.stamp,
      data: { bytes: GiB, sha256: a }, file: { name: '2026-12-01-06-00-00.xdelta3', bytes: 4096, sha256: a }, consistency: 'shut-off',
      source: { lv: '/dev/vg-pmc/web', drbdDevice: '/dev/drbd10' }, vmShape: { memoryBytes: GiB, vcpus: 1 }, xdelta3SourceWindow: 64 * 1024 ** 2, pmcVersion: '0.1.0',
    } as const;
    const inc: BackupEntry = { ...base, stamp: manifest.stamp, kind: 'incremental', path: `/pmc-vm-backup/web/${manifest.file.name}`, bytes: 4096, base: base.stamp, manifest };
    const [, check] = planVerify([base, inc]);
    const r = judge(check!, 1, `${b}\nxdelta3: xdelta3: please verify the source file with sha1sum or equivalent\n`, '');
    assert.equal(r.status, 'bad');
    assert.equal(r.detail, `sha256 of the file is ${b}, the manifest says ${a}`);
  });
});
