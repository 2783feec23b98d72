import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildCluster } from '../../../src/model/cluster.js';
import { summarizeNode } from '../../../src/ops/pm/list.js';
import { summarizeVm } from '../../../src/ops/vm/list.js';
import { plainStyle } from '../../../src/render/style.js';
import { vmDetailsView, vmsView } from '../../../src/render/views/vms.js';
import {
  CONFIG, domain, lv, pairedVm, peer, probes, resource, SHARED_CONFIG, SHARED_DIR, sharedMounts, sharedVm,
} from './factory.js';

const MiB = 1024 ** 2;

test('a replicated VM: runs on its primary, the other node is its peer, replication healthy', () => {
  const state = buildCluster(CONFIG, probes(['pm-1', 'pm-2', 'pm-3'], pairedVm('web', 'pm-2', 'pm-1', 10)));
  assert.equal(state.vms.length, 1);
  const vm = state.vms[0]!;
  assert.equal(vm.name, 'web');
  assert.deepEqual(vm.nodes, ['pm-2', 'pm-1']);
  assert.equal(vm.home, 'pm-2');
  assert.equal(vm.peer, 'pm-1');
  assert.equal(vm.state, 'running');
  assert.deepEqual(vm.runningOn, ['pm-2']);
  assert.equal(vm.minor, 10);
  assert.equal(vm.port, 7788);
  assert.deepEqual(vm.replication, { disks: 'UpToDate/UpToDate', roles: 'Primary/Secondary', connection: 'Connected', replication: 'Established', syncPercent: undefined });
  assert.deepEqual(vm.flags, []);
});

test('nodes without VMs still get a row; usage counts running and shut-off VMs', () => {
  const state = buildCluster(CONFIG, probes(['pm-1', 'pm-2', 'pm-3'],
    pairedVm('web', 'pm-1', 'pm-2', 10, 512 * MiB), pairedVm('db', 'pm-2', 'pm-1', 11, 256 * MiB)));
  assert.deepEqual(state.nodes.map((n) => n.name), ['pm-1', 'pm-2', 'pm-3']);
  const pm1 = summarizeNode(state.nodes[0]!, state);
  assert.deepEqual(pm1.running, [{ name: 'web', memoryBytes: 512 * MiB }]);
  assert.deepEqual(pm1.shutOff, [{ name: 'db', memoryBytes: 256 * MiB }]);
  assert.deepEqual(pm1.drbdDisks, { UpToDate: 2 });
  assert.deepEqual(pm1.vms, ['db', 'web']);
  assert.equal(state.nodes[0]!.usage.definedMemoryBytes, 768 * MiB);
  const pm3 = summarizeNode(state.nodes[2]!, state);
  assert.deepEqual(pm3.vms, []);
  assert.deepEqual(pm3.drbdDisks, {});
  assert.equal(pm3.reachable, true);
});

test('an unreachable node: its VMs are flagged node-down and degraded, the rest still read', () => {
  const parts = pairedVm('web', 'pm-1', 'pm-2', 10);
  const all = probes(['pm-1', 'pm-2', 'pm-3'], { 'pm-1': parts['pm-1']!, 'pm-2': { ...parts['pm-2']!, drbdResources: [resource('web', 'pm-2', ['pm-1', 'pm-2'], 10, { peers: [peer('pm-1', { connection: 'Connecting', diskState: 'DUnknown', role: 'Unknown', replication: 'Off' })] })] } });
  all[0] = { node: 'pm-1', ok: false, error: { code: 'PMC_E_NODE_UNREACHABLE', message: 'pm-1: connection refused on 10.99.0.11:22' } };
  const state = buildCluster(CONFIG, all);
  const vm = state.vms[0]!;
  assert.deepEqual(vm.nodes, ['pm-1', 'pm-2']);
  assert.equal(vm.state, 'shut off');
  assert.ok(vm.flags.includes('node-down'));
  assert.ok(vm.flags.includes('degraded'));
  assert.equal(state.nodes[0]!.reachable, false);
  assert.match(state.nodes[0]!.error!.message, /connection refused/);
});

test('running on two nodes and two primaries are flagged', () => {
  const parts = pairedVm('web', 'pm-1', 'pm-2', 10);
  parts['pm-2']!.domains = [domain('web', 'running')];
  parts['pm-2']!.drbdResources = [resource('web', 'pm-2', ['pm-1', 'pm-2'], 10, { role: 'Primary', peers: [peer('pm-1', { role: 'Primary' })] })];
  const vm = buildCluster(CONFIG, probes(['pm-1', 'pm-2'], parts)).vms[0]!;
  assert.equal(vm.state, 'running twice');
  assert.ok(vm.flags.includes('running-twice'));
  assert.ok(vm.flags.includes('two-primaries'));
});

test('a resync shows progress and the syncing flag', () => {
  const parts = pairedVm('web', 'pm-2', 'pm-1', 10);
  parts['pm-2']!.drbdResources = [resource('web', 'pm-2', ['pm-2', 'pm-1'], 10, { role: 'Primary', peers: [peer('pm-1', { replication: 'SyncSource', diskState: 'Inconsistent', syncPercent: 42.5 })] })];
  parts['pm-1']!.drbdResources = [resource('web', 'pm-1', ['pm-2', 'pm-1'], 10, { diskState: 'Inconsistent', peers: [peer('pm-2', { role: 'Primary', replication: 'SyncTarget', syncPercent: 42.5 })] })];
  const vm = buildCluster(CONFIG, probes(['pm-1', 'pm-2'], parts)).vms[0]!;
  assert.equal(vm.replication!.disks, 'UpToDate/Inconsistent');
  assert.equal(vm.replication!.syncPercent, 42.5);
  assert.ok(vm.flags.includes('syncing'));
  assert.ok(!vm.flags.includes('degraded'));
});

test('split brain: both sides StandAlone is flagged even when drbdadm status looks healthy', () => {
  const parts = pairedVm('web', 'pm-2', 'pm-1', 10);
  const standalone = peer('pm-1', { connection: 'StandAlone', role: 'Unknown', diskState: 'DUnknown', replication: 'Off' });
  parts['pm-2']!.drbdResources = [resource('web', 'pm-2', ['pm-2', 'pm-1'], 10, { role: 'Primary', peers: [standalone] })];
  parts['pm-1']!.drbdResources = [resource('web', 'pm-1', ['pm-2', 'pm-1'], 10, { peers: [{ ...standalone, node: 'pm-2' }] })];
  const vm = buildCluster(CONFIG, probes(['pm-1', 'pm-2'], parts)).vms[0]!;
  assert.ok(vm.flags.includes('split-brain'));
  assert.equal(vm.replication!.connection, 'StandAlone');
});

test('VMs with the ignore prefix are listed and flagged ignored; a one-node VM has no peer', () => {
  const state = buildCluster(CONFIG, probes(['pm-1', 'pm-2', 'pm-3'], {
    'pm-3': { domains: [domain('ignore-lab', 'running', { disks: [] }), domain('solo', 'shut off', { disks: [] })], lvs: [lv('solo')] },
  }));
  const ignored = state.vms.find((v) => v.name === 'ignore-lab')!;
  assert.equal(ignored.ignored, true);
  assert.ok(ignored.flags.includes('ignored'));
  const solo = state.vms.find((v) => v.name === 'solo')!;
  assert.equal(solo.peer, undefined);
  assert.equal(solo.home, 'pm-3');
  assert.equal(solo.diskBytes, 1024 ** 3);
});

test('a shared-storage VM: defined on every node, runs on one, no peer or DRBD; its size comes from the file listing', () => {
  const GiB = 1024 ** 3;
  const nodes = ['pm-1', 'pm-2', 'pm-3'];
  const state = buildCluster(SHARED_CONFIG, probes(nodes,
    sharedMounts(nodes, [{ name: 'web.img', sizeBytes: 10 * GiB }]),
    sharedVm('web', nodes, ['pm-2'], 512 * MiB), pairedVm('db', 'pm-1', 'pm-3', 11, 256 * MiB)));
  const web = state.vms.find((v) => v.name === 'web')!;
  assert.deepEqual(web.shared, { file: `${SHARED_DIR}/web.img` });
  assert.deepEqual(web.nodes, nodes);
  assert.equal(web.home, 'pm-2');
  assert.equal(web.peer, undefined);
  assert.equal(web.replication, undefined);
  assert.equal(web.diskBytes, 10 * GiB);
  assert.deepEqual(web.flags, []);
  assert.equal(state.vms.find((v) => v.name === 'db')!.shared, undefined, 'a DRBD VM stays one');
  // It will land on one node, not on all three: it counts where it runs.
  assert.deepEqual(state.nodes.map((n) => n.usage.definedMemoryBytes), [256 * MiB, 512 * MiB, 256 * MiB]);

  const rows = vmsView([summarizeVm(web)], { style: plainStyle, fields: undefined } as never);
  assert.match(rows, /^web\s+pm-2\s+-\s+running\s+1\s+512 MiB\s+10 GiB\s+-\s+-\s+shared\s+-$/m);
  const details = vmDetailsView({ ...summarizeVm(web), ignored: false, replicas: web.replicas }, { style: plainStyle } as never);
  assert.match(details, /^Storage: shared, \/var\/lib\/pmc-shared\/web\.img$/m);
  assert.doesNotMatch(details, /no resource|lv: none/);
});

test('a shared VM shut off everywhere lives on the first node that defines it; running on two is flagged', () => {
  const off = buildCluster(SHARED_CONFIG, probes(['pm-1', 'pm-2', 'pm-3'], sharedVm('web', ['pm-3', 'pm-2'], []))).vms[0]!;
  assert.equal(off.home, 'pm-2');
  assert.deepEqual(off.nodes, ['pm-2', 'pm-3']);
  assert.equal(off.state, 'shut off');
  const twice = buildCluster(SHARED_CONFIG, probes(['pm-1', 'pm-2', 'pm-3'], sharedVm('web', ['pm-1', 'pm-2', 'pm-3'], ['pm-1', 'pm-3']))).vms[0]!;
  assert.deepEqual(twice.runningOn, ['pm-1', 'pm-3']);
  assert.ok(twice.flags.includes('running-twice'));
  const silent = probes(['pm-1', 'pm-2', 'pm-3'], sharedVm('web', ['pm-1', 'pm-2'], []));
  silent[2] = { node: 'pm-3', ok: false, error: { code: 'PMC_E_NODE_UNREACHABLE', message: 'pm-3: connection timed out' } };
  assert.deepEqual(buildCluster(SHARED_CONFIG, silent).vms[0]!.flags, ['node-down'], 'pm-3 may run it: nobody could ask');
  const unconfigured = buildCluster(CONFIG, probes(['pm-1', 'pm-2'], sharedVm('web', ['pm-1', 'pm-2'], ['pm-1']))).vms[0]!;
  assert.equal(unconfigured.shared, undefined, 'without storage.shared no disk is shared');
});

test('a shared VM left running on its backup overlay (a merge that failed) is still that VM with its own file', () => {
  const running = sharedVm('web', ['pm-1', 'pm-2'], ['pm-1']);
  const onOverlay = running['pm-1']!.domains!.map((d) => ({ ...d, disks: [{ ...d.disks[0]!, type: 'file', source: `${SHARED_DIR}/.web.pmc-backup.qcow2` }] }));
  const web = buildCluster(SHARED_CONFIG, probes(['pm-1', 'pm-2'], { ...running, 'pm-1': { domains: onOverlay } })).vms[0]!;
  assert.deepEqual(web.shared, { file: `${SHARED_DIR}/web.img` });
  assert.deepEqual(web.runningOn, ['pm-1']);
});
