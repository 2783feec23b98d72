import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildCluster } from '../../../src/model/cluster.js';
import { verifyCluster, type CheckCode } from '../../../src/ops/cluster/verify.js';
import type { NodeFacts } from '../../../src/probe/types.js';
import {
  CONFIG, domain, lv, nodeFacts, pairedVm, peer, probes, resource, SHARED_CONFIG, sharedFacts, sharedMounts, sharedVm,
} from './factory.js';

const MiB = 1024 ** 2;
const NODES = ['pm-1', 'pm-2', 'pm-3'];

function codes(...parts: Record<string, Partial<NodeFacts>>[]): CheckCode[] {
  return verifyCluster(buildCluster(CONFIG, probes(NODES, ...parts))).map((f) => f.code);
}

function findings(...parts: Record<string, Partial<NodeFacts>>[]) {
  return verifyCluster(buildCluster(CONFIG, probes(NODES, ...parts)));
}

test('a healthy cluster has no findings', () => {
  assert.deepEqual(codes(pairedVm('web', 'pm-1', 'pm-2', 10), pairedVm('db', 'pm-2', 'pm-3', 11)), []);
});

test('node checks: unreachable, host name, VG, bridge, DRBD module, libvirt', () => {
  const all = probes(NODES, { 'pm-1': { hostname: 'node1', vg: undefined }, 'pm-2': { bridge: { name: 'br0', present: false, isBridge: false, up: false, carrier: false, operState: undefined } } });
  all[2] = { node: 'pm-3', ok: false, error: { code: 'PMC_E_HOSTKEY_CHANGED', message: 'pm-3: host key changed', hint: 'check it' } };
  all[1]!.ok && ((all[1] as { value: NodeFacts }).value.libvirt.active = false);
  const found = verifyCluster(buildCluster(CONFIG, all));
  const byCode = new Map(found.map((f) => [f.code, f]));
  assert.equal(byCode.get('PMC_V_NODE_HOSTNAME')?.node, 'pm-1');
  assert.match(byCode.get('PMC_V_NODE_HOSTNAME')!.fix, /hostnamectl set-hostname pm-1/);
  assert.equal(byCode.get('PMC_V_NODE_NO_VG')?.node, 'pm-1');
  assert.equal(byCode.get('PMC_V_NODE_NO_BRIDGE')?.node, 'pm-2');
  assert.equal(byCode.get('PMC_V_NODE_LIBVIRT_DOWN')?.node, 'pm-2');
  assert.equal(byCode.get('PMC_V_NODE_UNREACHABLE')?.message, 'pm-3: host key changed');
  assert.equal(byCode.get('PMC_V_NODE_UNREACHABLE')?.fix, 'check it');
  assert.ok(found.every((f) => f.severity === 'error'));
});

test('DRBD module not loaded: an error where resources live, a warning elsewhere', () => {
  const off = { moduleLoaded: false, kernelVersion: undefined, utilsVersion: '9.22.0', minorsInKernel: [] };
  const found = findings(pairedVm('web', 'pm-1', 'pm-2', 10), { 'pm-2': { drbd: off }, 'pm-3': { drbd: off } });
  const notLoaded = found.filter((f) => f.code === 'PMC_V_NODE_DRBD_NOT_LOADED');
  assert.deepEqual(notLoaded.map((f) => [f.node, f.severity]), [['pm-2', 'error'], ['pm-3', 'warning']]);
  assert.equal(notLoaded[0]!.fix, 'pmc pm drbd-up pm-2');
});

test('a VM running on two nodes', () => {
  const parts = pairedVm('web', 'pm-1', 'pm-2', 10);
  parts['pm-2']!.domains = [domain('web', 'running')];
  assert.ok(codes(parts).includes('PMC_V_VM_RUNNING_TWICE'));
});

test('a VM defined on only one of its resource\'s nodes', () => {
  const parts = pairedVm('web', 'pm-1', 'pm-2', 10);
  parts['pm-2']!.domains = [];
  const f = findings(parts).find((x) => x.code === 'PMC_V_VM_DEFINED_ON_ONE')!;
  assert.equal(f.node, 'pm-2');
  assert.match(f.fix, /virsh dumpxml --inactive --security-info web/);
});

test('UUID or XML differing between peers', () => {
  const uuid = pairedVm('web', 'pm-1', 'pm-2', 10);
  uuid['pm-2']!.domains = [domain('web', 'shut off', { uuid: 'other-uuid' })];
  assert.ok(codes(uuid).includes('PMC_V_VM_UUID_DIFFERS'));
  const xml = pairedVm('web', 'pm-1', 'pm-2', 10);
  xml['pm-2']!.domains = [domain('web', 'shut off', { xml: '<domain><name>web</name><memory>1</memory></domain>' })];
  assert.deepEqual(codes(xml), ['PMC_V_VM_XML_DIFFERS']);
  const whitespace = pairedVm('web', 'pm-1', 'pm-2', 10);
  whitespace['pm-2']!.domains = [domain('web', 'shut off', { xml: '<domain>\n  <name>web</name>\n</domain>\n' })];
  assert.deepEqual(codes(whitespace), []);
});

test('resource down, not connected, not UpToDate, resyncing', () => {
  const down = pairedVm('web', 'pm-1', 'pm-2', 10);
  down['pm-2']!.drbdResources = [resource('web', 'pm-2', ['pm-1', 'pm-2'], 10, { up: false, role: undefined, diskState: undefined, peers: [] })];
  assert.ok(codes(down).includes('PMC_V_DRBD_DOWN'));

  const connecting = pairedVm('web', 'pm-1', 'pm-2', 10);
  connecting['pm-1']!.drbdResources = [resource('web', 'pm-1', ['pm-1', 'pm-2'], 10, { role: 'Primary', peers: [peer('pm-2', { connection: 'Connecting', diskState: 'DUnknown', replication: 'Off', role: 'Unknown' })] })];
  assert.ok(codes(connecting).includes('PMC_V_DRBD_NOT_CONNECTED'));

  const outdated = pairedVm('web', 'pm-1', 'pm-2', 10);
  outdated['pm-2']!.drbdResources = [resource('web', 'pm-2', ['pm-1', 'pm-2'], 10, { diskState: 'Outdated', peers: [peer('pm-1', { role: 'Primary' })] })];
  const f = findings(outdated).find((x) => x.code === 'PMC_V_DRBD_NOT_UPTODATE')!;
  assert.equal(f.severity, 'error');
  assert.equal(f.node, 'pm-2');

  const syncing = pairedVm('web', 'pm-1', 'pm-2', 10);
  syncing['pm-2']!.drbdResources = [resource('web', 'pm-2', ['pm-1', 'pm-2'], 10, { diskState: 'Inconsistent', peers: [peer('pm-1', { role: 'Primary', replication: 'SyncTarget', syncPercent: 12.5 })] })];
  const s = findings(syncing).find((x) => x.code === 'PMC_V_DRBD_NOT_UPTODATE')!;
  assert.equal(s.severity, 'warning');
  assert.match(s.message, /12\.5% done/);
});

test('split brain: StandAlone on both sides is reported as split brain suspected', () => {
  const parts = pairedVm('web', 'pm-1', 'pm-2', 10);
  const standalone = { connection: 'StandAlone' as const, diskState: 'DUnknown' as const, role: 'Unknown' as const, replication: 'Off' as const };
  parts['pm-1']!.drbdResources = [resource('web', 'pm-1', ['pm-1', 'pm-2'], 10, { role: 'Primary', peers: [peer('pm-2', standalone)] })];
  parts['pm-2']!.drbdResources = [resource('web', 'pm-2', ['pm-1', 'pm-2'], 10, { peers: [peer('pm-1', standalone)] })];
  const found = findings(parts).filter((f) => f.code === 'PMC_V_DRBD_SPLIT_BRAIN');
  assert.deepEqual(found.map((f) => f.node), ['pm-1', 'pm-2']);
  assert.match(found[0]!.fix, /--discard-my-data/);
});

test('two primaries outside a migration is an error; during one it is not', () => {
  const parts = pairedVm('web', 'pm-1', 'pm-2', 10);
  parts['pm-2']!.drbdResources = [resource('web', 'pm-2', ['pm-1', 'pm-2'], 10, { role: 'Primary', peers: [peer('pm-1', { role: 'Primary' })] })];
  assert.ok(codes(parts).includes('PMC_V_DRBD_TWO_PRIMARIES'));
  parts['pm-2']!.domains = [domain('web', 'paused', { stateReason: 'migration' })];
  assert.ok(!codes(parts).includes('PMC_V_DRBD_TWO_PRIMARIES'));
});

test('the old tool\'s permanent allow-two-primaries is a warning', () => {
  const parts = pairedVm('web', 'pm-1', 'pm-2', 10);
  for (const node of ['pm-1', 'pm-2']) parts[node]!.drbdResources = parts[node]!.drbdResources!.map((r) => ({ ...r, allowTwoPrimaries: true }));
  const f = findings(parts);
  assert.deepEqual(f.map((x) => [x.code, x.severity]), [['PMC_V_DRBD_TWO_PRIMARIES_ALLOWED', 'warning']]);
});

test('minor and port used twice on a node', () => {
  const a = pairedVm('web', 'pm-1', 'pm-2', 10);
  const b = pairedVm('db', 'pm-1', 'pm-3', 10);
  const found = findings(a, b).filter((f) => f.code === 'PMC_V_MINOR_DUPLICATE' || f.code === 'PMC_V_PORT_DUPLICATE');
  assert.deepEqual(found.map((f) => [f.code, f.node]), [['PMC_V_MINOR_DUPLICATE', 'pm-1'], ['PMC_V_PORT_DUPLICATE', 'pm-1']]);
  assert.match(found[0]!.message, /minor 10 is used by (web and db|db and web)/);
});

test('orphans: an LV, a resource file and a domain nobody else accounts for', () => {
  const found = findings(pairedVm('web', 'pm-1', 'pm-2', 10), {
    'pm-3': {
      lvs: [lv('leftover')],
      drbdResourceFiles: ['/etc/drbd.d/gone.res'],
      drbdResources: [resource('gone', 'pm-3', ['pm-3', 'pm-1'], 12, { up: false, role: undefined, diskState: undefined, peers: [] })],
    },
    'pm-1': { domains: [domain('stray', 'shut off', { minor: 99 })] },
  });
  const orphan = found.filter((f) => f.code.startsWith('PMC_V_ORPHAN'));
  assert.deepEqual(orphan.map((f) => [f.code, f.node]).sort(), [
    ['PMC_V_ORPHAN_DOMAIN', 'pm-1'], ['PMC_V_ORPHAN_LV', 'pm-3'], ['PMC_V_ORPHAN_RESOURCE_FILE', 'pm-3'],
  ]);
});

test('a domain left on a backup overlay (its merge failed): an error with the repair; a domain on its file is fine', () => {
  const onFile = { device: 'disk', type: 'file', source: '/shared/vms/files.img', target: 'vda', bus: 'virtio' };
  const onOverlay = { ...onFile, source: '/shared/vms/.files.pmc-backup.qcow2' };
  const found = findings({
    'pm-2': { domains: [domain('files', 'running', { disks: [onOverlay] })] },
    'pm-3': { domains: [domain('files', 'shut off', { disks: [onFile] }), domain('other', 'shut off', { disks: [onOverlay] })] },
  }).filter((f) => f.code === 'PMC_V_VM_ON_BACKUP_OVERLAY');
  assert.deepEqual(found.map((f) => [f.node, f.vm, f.severity, f.fix]), [
    ['pm-2', 'files', 'error', 'on pm-2: virsh blockcommit uuid-of-files vda --active --pivot --wait && rm -f -- /shared/vms/.files.pmc-backup.qcow2'],
  ]);
  assert.match(found[0]!.message, /domain files's disk vda is the backup overlay \/shared\/vms\/\.files\.pmc-backup\.qcow2/);
  const off = findings({ 'pm-1': { domains: [domain('files', 'shut off', { disks: [onOverlay] })] } }).find((f) => f.code === 'PMC_V_VM_ON_BACKUP_OVERLAY')!;
  assert.match(off.fix, /^start files \(it runs on the overlay, which holds its newest writes\), then on pm-1: virsh blockcommit/);
});

test('N+1: a node whose VMs do not fit on their peer', () => {
  const big = pairedVm('big', 'pm-1', 'pm-2', 10, 1024 * MiB);
  const bigger = pairedVm('bigger', 'pm-1', 'pm-2', 11, 1024 * MiB);
  const f = findings(big, bigger).find((x) => x.code === 'PMC_V_NODE_N_PLUS_1')!;
  assert.equal(f.node, 'pm-2');
  assert.match(f.message, /if pm-1 fails, pm-2 must start big, bigger \(2 GiB\) but has 1\.5 GiB free/);
  assert.deepEqual(codes(pairedVm('small', 'pm-1', 'pm-2', 10, 512 * MiB)), []);
});

test('nodeFacts defaults describe a healthy, empty node', () => {
  assert.deepEqual(verifyCluster(buildCluster({ ...CONFIG, nodes: [{ name: "pm-1" }] }, [{ node: "pm-1", ok: true, value: nodeFacts("pm-1") }])), []);
});

test('shared storage: a node where the directory is missing, not mounted, unmarked or another file system is an error with a fix', () => {
  const healthy = sharedMounts(NODES);
  const sharedFindings = (parts: Record<string, Partial<NodeFacts>>) => verifyCluster(buildCluster(SHARED_CONFIG, probes(NODES, healthy, parts)))
    .filter((f) => f.code === 'PMC_V_NODE_SHARED_STORAGE').map((f) => [f.node, f.severity, f.message, f.fix]);
  assert.deepEqual(sharedFindings(sharedVm('web', NODES, ['pm-1'])), []);
  const twice = verifyCluster(buildCluster(SHARED_CONFIG, probes(NODES, healthy, sharedVm('web', NODES, ['pm-1', 'pm-3'])))).find((f) => f.code === 'PMC_V_VM_RUNNING_TWICE');
  assert.match(twice!.fix, /^both write \/var\/lib\/pmc-shared\/web\.img: power one off at once/);
  assert.deepEqual(sharedFindings({ 'pm-2': { shared: sharedFacts({ present: false, mountPoint: false, fsType: undefined, id: undefined }) } }), [
    ['pm-2', 'error', 'pm-2: /var/lib/pmc-shared does not exist', 'mount the shared file system at /var/lib/pmc-shared on pm-2 (and in /etc/fstab)'],
  ]);
  assert.deepEqual(sharedFindings({ 'pm-3': { shared: sharedFacts({ mountPoint: false, fsType: 'ext4', id: undefined }) } }).map((f) => f[2]), [
    'pm-3: /var/lib/pmc-shared is not a mount point (it is on the ext4 file system of a parent)',
  ]);
  assert.deepEqual(sharedFindings({ 'pm-3': { shared: sharedFacts({ id: 'ffff' }) } }), [[
    'pm-3', 'error', 'pm-3: the marker in /var/lib/pmc-shared says ffff, the other nodes\' says 6f1c2a9e0b7d4e3f8a5c1d2e3f4a5b6c: it is another file system',
    'mount the shared file system at /var/lib/pmc-shared on pm-3 (and in /etc/fstab), the same export the other nodes mount',
  ]]);
  assert.deepEqual(sharedFindings({ 'pm-1': { shared: sharedFacts({ id: undefined }) } }).map((f) => f[2]), [
    'pm-1: /var/lib/pmc-shared lacks the marker the other nodes see there: it is another file system',
  ]);
  const unmarked = verifyCluster(buildCluster(SHARED_CONFIG, probes(NODES, Object.fromEntries(NODES.map((n) => [n, { shared: sharedFacts({ id: undefined }) }])))));
  assert.deepEqual(unmarked.map((f) => f.fix), NODES.map(() => 'pmc pm init --fix (writes the marker once, from one node)'));
  assert.deepEqual(sharedFindings({ 'pm-2': { shared: sharedFacts({ present: false, failure: 'timed out' }) } }).map((f) => f[2]), [
    'pm-2: /var/lib/pmc-shared could not be read (timed out)',
  ]);
});
