// Failover and cluster heal of shared-storage VMs: after the lost node is proven down, the VM
// starts on the node that defines it with the most free memory; never while another node is
// silent or runs it, and pm failover / heal take only VMs that the libvirt trace says ran there.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Config } from '../../../src/config/load.js';
import { planHeal, type HealAction } from '../../../src/ops/cluster/heal-plan.js';
import { checkFailover, planFailover, selectFailovers } from '../../../src/ops/vm/failover.js';
import type { Domain, NodeFacts } from '../../../src/probe/types.js';
import { domain, SHARED_DIR, sharedMounts } from '../model/factory.js';
import { afterCrash } from './failover-helpers.js';
import { cluster, config, GiB, NODES, withNodeDown } from './vm-add-helpers.js';
import { refuses } from '../refusal.js';

const CFG = config('', NODES, ['  shared:', `    directory: ${SHARED_DIR}`]);
const MOUNTED = sharedMounts(NODES);

/** A shared VM, shut off on each given node with that node's libvirt reason. */
function sharedShutOff(name: string, reasons: Record<string, string>, memoryBytes = GiB / 4): Record<string, Partial<NodeFacts>> {
  const disks: Domain['disks'] = [{ device: 'disk', type: 'file', source: `${SHARED_DIR}/${name}.img`, target: 'vda', bus: 'virtio' }];
  return Object.fromEntries(Object.entries(reasons).map(([node, reason]) => [node, { domains: [{ ...domain(name, 'shut off', { disks, memoryBytes }), stateReason: reason }] }]));
}


const fenced = (node: string): Config => ({ ...CFG, nodes: CFG.nodes.map((n) => (n.name === node ? { ...n, fence: 'ipmitool chassis power off' } : n)) });

test('vm failover of a shared VM: only a start, on the defining node with the most free memory; no DRBD, no stale copy', () => {
  const busy = sharedShutOff('db', { 'pm-1': 'migrated' }, GiB);
  busy['pm-1']!.domains![0]!.state = 'running';
  const state = withNodeDown(CFG, 'pm-3', MOUNTED, sharedShutOff('web', { 'pm-1': 'migrated', 'pm-2': 'unknown' }), busy);
  const target = checkFailover(state, CFG, 'web');
  assert.deepEqual([target.lost, target.survivor, target.resource], ['pm-3', 'pm-2', undefined]);
  const plan = planFailover([target]);
  assert.deepEqual(plan.steps.map((s) => [s.node, s.command, s.undo?.command]), [['pm-2', 'virsh start uuid-of-web', 'virsh destroy uuid-of-web']]);
  assert.ok(!plan.notes.some((n) => /stale/.test(n)), plan.notes.join('\n'));
});

test('never twice: refused while every node answers, while a second node is silent, or while it runs somewhere', () => {
  refuses('PMC_E_NODE_ALIVE', /every node answers SSH/, () => checkFailover(cluster(CFG, MOUNTED, sharedShutOff('web', { 'pm-1': 'migrated' })), CFG, 'web'));
  const twoDown = withNodeDown(CFG, 'pm-3', MOUNTED, sharedShutOff('web', { 'pm-1': 'migrated' }));
  twoDown.nodes[1] = { ...twoDown.nodes[1]!, reachable: false, facts: undefined };
  refuses('PMC_E_NODE_UNREACHABLE', /pm-3 could not be asked whether it runs it there/, () => checkFailover(twoDown, CFG, 'web'));
  const running = sharedShutOff('web', { 'pm-1': 'migrated', 'pm-2': 'booted' });
  running['pm-2']!.domains![0]!.state = 'running';
  refuses('PMC_E_STATE', /web runs on pm-2: there is nothing to fail over/, () => checkFailover(withNodeDown(CFG, 'pm-3', MOUNTED, running), CFG, 'web'));
});

test('pm failover and heal take a shared VM only when libvirt says it migrated away and was stopped nowhere that answers', () => {
  const state = withNodeDown(CFG, 'pm-3', MOUNTED,
    sharedShutOff('web', { 'pm-1': 'migrated', 'pm-2': 'unknown' }),
    sharedShutOff('stopped', { 'pm-1': 'migrated', 'pm-2': 'shutdown' }),
    sharedShutOff('fresh', { 'pm-1': 'unknown', 'pm-2': 'unknown' }));
  const { targets, skipped } = selectFailovers(state, CFG, 'pm-3');
  assert.deepEqual(targets.map((t) => [t.vm, t.survivor]), [['web', 'pm-2']], 'pm-1 holds the memory of the three, shut off there');
  assert.deepEqual(skipped, [
    'fresh not failed over: nothing says it ran on pm-3 (shut off on pm-1: unknown, pm-2: unknown); if it did: pmc vm failover fresh',
    'stopped not failed over: nothing says it ran on pm-3 (shut off on pm-1: migrated, pm-2: shutdown); if it did: pmc vm failover stopped',
  ]);
  const [action] = planHeal(state, fenced('pm-3'));
  assert.equal(action?.kind, 'failover');
  assert.deepEqual((action as Extract<HealAction, { kind: 'failover' }>).vms, ['web']);
});

test('a dead node with DRBD and shared VMs: both fail over, each its own way', () => {
  const state = withNodeDown(CFG, 'pm-1', MOUNTED, afterCrash(), sharedShutOff('web-s', { 'pm-2': 'migrated', 'pm-3': 'unknown' }));
  const { targets } = selectFailovers(state, CFG, 'pm-1');
  assert.deepEqual(targets.map((t) => [t.vm, t.survivor, t.resource]), [['web', 'pm-2', 'web'], ['web-s', 'pm-3', undefined]]);
});
