// cluster rebalance and pm evacuate with shared-storage VMs: every node in the score is a target
// for them, each moves at most once, vm mv's checks run with the planned target, and a node
// that only defines one does not hold up its evacuation.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkRebalance } from '../../../src/ops/cluster/rebalance.js';
import { checkEvacuation } from '../../../src/ops/pm/evacuate.js';
import { planRebalance, type RebalancePlan } from '../../../src/ops/cluster/rebalance-plan.js';
import type { MigrateFacts } from '../../../src/ops/vm/migrate-plan.js';
import { SHARED_DIR, sharedMounts, sharedVm } from '../model/factory.js';
import { cluster, config, MiB, NODES } from './vm-add-helpers.js';

const CFG = config('', NODES, ['  shared:', `    directory: ${SHARED_DIR}`]);
const FACTS: MigrateFacts = Object.fromEntries(NODES.map((n) => [n, { bridges: { br0: true }, files: {} }]));
const moves = (plan: RebalancePlan) => plan.moves.map((m) => `${m.vm} ${m.from} -> ${m.to}`);

/** Shared VMs of 512 MiB, each running where the layout says and defined on every node. */
function layout(where: Record<string, string>) {
  return cluster(CFG, sharedMounts(NODES), ...Object.entries(where).map(([vm, node]) => sharedVm(vm, NODES, [node], 512 * MiB)));
}

test('three shared VMs on pm-1: one goes to each other node (no DRBD peer needed), and a second plan moves nothing', () => {
  const plan = planRebalance(layout({ a: 'pm-1', b: 'pm-1', c: 'pm-1' }));
  assert.deepEqual(moves(plan), ['a pm-1 -> pm-2', 'b pm-1 -> pm-3']);
  assert.equal(plan.scoreAfter, 0);
  assert.deepEqual(plan.held, []);
  assert.deepEqual(moves(planRebalance(layout({ a: 'pm-2', b: 'pm-3', c: 'pm-1' }))), []);
});

test('each planned move is checked by vm mv with its own target', async () => {
  const checked = await checkRebalance(layout({ a: 'pm-1', b: 'pm-1', c: 'pm-1' }), CFG, { maxMoves: undefined, timeoutSeconds: 600 }, async () => FACTS);
  assert.deepEqual(checked.migrations.map((m) => `${m.vm} ${m.source} -> ${m.target} ${m.resource ?? 'shared'}`), ['a pm-1 -> pm-2 shared', 'b pm-1 -> pm-3 shared']);
});

test('pm evacuate pm-1: the shared VM running there migrates to another node, one only defined there stays as it is', () => {
  const state = cluster(CFG, sharedMounts(NODES), sharedVm('a', NODES, ['pm-1'], 512 * MiB), sharedVm('b', NODES, ['pm-2'], 512 * MiB), sharedVm('c', NODES, [], 512 * MiB));
  for (const secondaries of [false, true]) {
    const check = checkEvacuation(state, CFG, { node: 'pm-1', secondaries, to: undefined, timeoutSeconds: 600 }, FACTS);
    assert.deepEqual(check.migrations.map((m) => `${m.vm} ${m.source} -> ${m.target}`), ['a pm-1 -> pm-3']);
    assert.deepEqual([check.copies, check.demotions], [[], []]);
  }
});
