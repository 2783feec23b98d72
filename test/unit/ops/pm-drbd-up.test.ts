import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildCluster } from '../../../src/model/cluster.js';
import type { StepRecord } from '../../../src/ops/engine/execute.js';
import { drbdUpRows, planDrbdUp } from '../../../src/ops/pm/drbd-up.js';
import type { DrbdResource, NodeFacts } from '../../../src/probe/types.js';
import { CONFIG, lv, probes, resource } from '../model/factory.js';

const NODES = ['pm-1', 'pm-2', 'pm-3'];
const UP_CONFIG = { ignorePrefix: 'ignore', storage: { volumeGroup: 'vg-pmc' } } as Parameters<typeof planDrbdUp>[2];
const down: Partial<DrbdResource> = { up: false, role: undefined, diskState: undefined, peers: [] };

/** pm-1 just booted: module not loaded, LVs inactive, every resource down. */
function bootedPm1(parts: Partial<NodeFacts> = {}) {
  return {
    'pm-1': {
      drbd: { moduleLoaded: false, kernelVersion: undefined, utilsVersion: '9.22.0', minorsInKernel: [] },
      lvs: [{ ...lv('web'), active: false, open: false }, { ...lv('db'), active: false, open: false }],
      drbdResources: [resource('web', 'pm-1', ['pm-1', 'pm-2'], 10, down), resource('db', 'pm-1', ['pm-3', 'pm-1'], 11, down)],
      ...parts,
    },
  };
}

test('after a boot: vgchange, modprobe, then drbdadm up for each resource, in that order', () => {
  const state = buildCluster(CONFIG, probes(NODES, bootedPm1()));
  const plan = planDrbdUp(state, ['pm-1'], UP_CONFIG);
  assert.deepEqual(plan.steps.map((s) => [s.node, s.command]), [
    ['pm-1', 'vgchange -ay -- vg-pmc'],
    ['pm-1', 'modprobe drbd'],
    ['pm-1', 'drbdadm up web'],
    ['pm-1', 'drbdadm up db'],
  ]);
  assert.equal(plan.title, 'bring up DRBD on pm-1');
});

test('nothing to do when every resource is up; only the missing pieces otherwise', () => {
  const healthy = buildCluster(CONFIG, probes(NODES, { 'pm-1': { drbdResources: [resource('web', 'pm-1', ['pm-1', 'pm-2'], 10)], lvs: [lv('web')] } }));
  assert.deepEqual(planDrbdUp(healthy, NODES, UP_CONFIG).steps, []);

  const oneDown = buildCluster(CONFIG, probes(NODES, { 'pm-1': { drbdResources: [resource('web', 'pm-1', ['pm-1', 'pm-2'], 10), resource('db', 'pm-1', ['pm-1', 'pm-3'], 11, down)], lvs: [lv('web'), lv('db')] } }));
  assert.deepEqual(planDrbdUp(oneDown, NODES, UP_CONFIG).steps.map((s) => s.command), ['drbdadm up db']);
});

test('--only limits the resources; resources without a section for this host are left alone', () => {
  const stranger = resource('other', 'pm-1', ['pm-2', 'pm-3'], 12, down);
  const state = buildCluster(CONFIG, probes(NODES, bootedPm1({
    drbdResources: [...bootedPm1()['pm-1'].drbdResources, stranger],
  })));
  assert.deepEqual(planDrbdUp(state, ['pm-1'], UP_CONFIG, ['db']).steps.map((s) => s.command), ['vgchange -ay -- vg-pmc', 'modprobe drbd', 'drbdadm up db']);
  assert.ok(!planDrbdUp(state, ['pm-1'], UP_CONFIG).steps.some((s) => s.command.includes('other')));
  assert.deepEqual(planDrbdUp(state, ['pm-1'], UP_CONFIG, ['nothing-here']).steps, []);
});

test('an unreachable node is skipped', () => {
  const all = probes(NODES, bootedPm1());
  all[0] = { node: 'pm-1', ok: false, error: { code: 'PMC_E_NODE_UNREACHABLE', message: 'pm-1: no route' } };
  assert.deepEqual(planDrbdUp(buildCluster(CONFIG, all), NODES, UP_CONFIG).steps, []);
});

test('rows: what was done to each resource and the state it is in now', () => {
  const before = buildCluster(CONFIG, probes(NODES, bootedPm1()));
  const plan = planDrbdUp(before, ['pm-1'], UP_CONFIG);
  assert.deepEqual(drbdUpRows(before, ['pm-1'], plan, undefined, 'ignore').map((r) => [r.resource, r.action, r.disk]), [['web', 'would bring up', 'down'], ['db', 'would bring up', 'down']]);

  const after = buildCluster(CONFIG, probes(NODES, bootedPm1({
    drbd: { moduleLoaded: true, kernelVersion: '8.4.11', utilsVersion: '9.22.0', minorsInKernel: [10] },
    drbdResources: [resource('web', 'pm-1', ['pm-1', 'pm-2'], 10), resource('db', 'pm-1', ['pm-3', 'pm-1'], 11, down)],
  })));
  const records: StepRecord[] = plan.steps.map((step, index) => {
    const ok = step.command !== 'drbdadm up db';
    return { step, index, ok, result: undefined, error: ok ? undefined : 'exit 10: Can not open backing device' };
  });
  const rows = drbdUpRows(after, ['pm-1'], plan, records, 'ignore');
  assert.deepEqual(rows.map((r) => [r.resource, r.action, r.role, r.disk, r.connection, r.peer, r.peerDisk, r.error]), [
    ['web', 'brought up', 'Secondary', 'UpToDate', 'Connected', 'pm-2', 'UpToDate', undefined],
    ['db', 'failed', undefined, 'down', undefined, undefined, undefined, 'exit 10: Can not open backing device'],
  ]);
  const untouched = drbdUpRows(after, ['pm-1'], { title: '', steps: [], notes: [] }, [], 'ignore');
  assert.deepEqual(untouched.map((r) => r.action), ['already up', 'down']);
});

test('resources of ignored VMs are never brought up, listed as ignored', () => {
  const ignored = resource('ignore-old', 'pm-1', ['pm-1', 'pm-2'], 12, down);
  const state = buildCluster(CONFIG, probes(NODES, bootedPm1({
    drbdResources: [...bootedPm1()['pm-1'].drbdResources, ignored],
  })));
  const plan = planDrbdUp(state, ['pm-1'], UP_CONFIG);
  assert.deepEqual(plan.steps.map((s) => s.command), ['vgchange -ay vg-pmc', 'modprobe drbd', 'drbdadm up web', 'drbdadm up db']);
  assert.deepEqual(planDrbdUp(state, ['pm-1'], UP_CONFIG, ['ignore-old']).steps, []);
  assert.deepEqual(drbdUpRows(state, ['pm-1'], plan, undefined, 'ignore').map((r) => [r.resource, r.action]),
    [['web', 'would bring up'], ['db', 'would bring up'], ['ignore-old', 'ignored']]);
  // An empty prefix ignores nothing.
  const all = planDrbdUp(state, ['pm-1'], { ...UP_CONFIG, ignorePrefix: '' });
  assert.ok(all.steps.some((s) => s.command === 'drbdadm up ignore-old'));
});
