// pmc cluster rebalance --secondaries: which standby copies move to which nodes and why, what
// never moves, the migrations then planned on the new pairs, --max-moves over both, the checks
// of vm peer-recreate on every copy move, generated clusters of 100 nodes and 2000 VMs, and the
// report.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ClusterState } from '../../../src/model/cluster.js';
import { parseRebalanceArgs } from '../../../src/ops/cluster/rebalance-args.js';
import { checkRebalance, type RebalanceReport } from '../../../src/ops/cluster/rebalance.js';
import { planCopyMoves } from '../../../src/ops/cluster/rebalance-copies.js';
import { planRebalance, type RebalancePlan } from '../../../src/ops/cluster/rebalance-plan.js';
import { planPeerRecreate } from '../../../src/ops/vm/peer-recreate.js';
import { migrationAsPlan, type MigrateFacts } from '../../../src/ops/vm/migrate-plan.js';
import type { NodeFacts } from '../../../src/probe/types.js';
import { rebalanceView } from '../../../src/render/views/rebalance.js';
import { plainStyle } from '../../../src/render/style.js';
import { pairedVm, peer } from '../model/factory.js';
import { generatedCluster } from './rebalance-helpers.js';
import { cluster, config, GiB, MiB } from './vm-add-helpers.js';

const NODES = ['pm-1', 'pm-2', 'pm-3'];
const CFG = config();
const VG = 8 * GiB;

type Parts = Record<string, Partial<NodeFacts>>;

/** VM name -> [where it runs, its DRBD peer]; 512 MiB of memory, a 1 GiB LV on each node of its pair. */
type Layout = Record<string, [string, string]>;

/** The cluster, every node's volume group (8 GiB) as full as its LVs make it; `extra` last (its vg wins). */
function build(layout: Layout, cfg = CFG, ...extra: Parts[]): ClusterState {
  const vms = Object.entries(layout).map(([name, [home, other]], i) => pairedVm(name, home, other, 10 + i, 512 * MiB));
  const nodes = cfg.nodes.map((n) => n.name);
  const used = (node: string) => [...vms, ...extra].reduce((sum, p) => sum + (p[node]?.lvs ?? []).reduce((s, lv) => s + lv.sizeBytes, 0), 0);
  const vgs = Object.fromEntries(nodes.map((n) => [n, { vg: { name: 'vg-pmc', sizeBytes: VG, freeBytes: VG - used(n), extentSizeBytes: 4 * MiB } }]));
  return cluster(cfg, ...vms, vgs, ...extra);
}

const secondaries = (state: ClusterState, opts: { maxMoves?: number; cfg?: typeof CFG } = {}) =>
  planRebalance(state, { maxMoves: opts.maxMoves, secondaries: opts.cfg ?? CFG });
const copies = (plan: RebalancePlan) => (plan.copies?.moves ?? []).map((m) => `${m.vm} ${m.from} -> ${m.to}`);
const moves = (plan: RebalancePlan) => plan.moves.map((m) => `${m.vm} ${m.from} -> ${m.to}`);

/** Two VMs running on pm-1 with their copies on pm-2; pm-3 (just added) holds nothing. */
const NEW_NODE: Layout = { a: ['pm-1', 'pm-2'], b: ['pm-1', 'pm-2'] };

describe('cluster rebalance --secondaries: the plan', () => {
  test('a new, empty node gets a standby copy, then a running VM migrates onto it', () => {
    const plan = secondaries(build(NEW_NODE));
    assert.deepEqual(copies(plan), ['a pm-2 -> pm-3']);
    const copy = plan.copies!.moves[0]!;
    assert.equal(copy.kind, 'move copy');
    assert.equal(copy.primary, 'pm-1');
    assert.equal(copy.reason, 'pm-2 holds 2 copies: 25% of its volume group; pm-3 holds 0 copies: 0% of its volume group');
    assert.ok(copy.scoreAfter < copy.scoreBefore && copy.scoreBefore === plan.copies!.scoreBefore);
    assert.deepEqual(plan.copies!.after.map((l) => `${l.node} ${l.copies}`), ['pm-1 2', 'pm-2 1', 'pm-3 1']);
    assert.deepEqual(moves(plan), ['a pm-1 -> pm-3'], 'a runs on pm-3 once its copy is there');
    assert.equal(plan.scoreAfter < plan.scoreBefore, true);
  });

  test('without --secondaries nothing but migrations, as before: the empty node gets nothing', () => {
    const plan = planRebalance(build(NEW_NODE));
    assert.equal(plan.copies, undefined);
    assert.deepEqual(moves(plan), ['a pm-1 -> pm-2']);
    assert.deepEqual(parseRebalanceArgs({ parallel: '1', timeout: '600', dryRun: false, secondaries: true }).secondaries, true);
    assert.equal(parseRebalanceArgs({ parallel: '1', timeout: '600', dryRun: false, secondaries: false }).secondaries, undefined);
  });

  test('a second plan on the result moves nothing', () => {
    const plan = secondaries(build({ a: ['pm-3', 'pm-1'], b: ['pm-1', 'pm-2'] }));
    assert.deepEqual([...copies(plan), ...moves(plan)], []);
  });

  test('an already balanced cluster: no copy moves, no migrations', () => {
    const plan = secondaries(build({ a: ['pm-1', 'pm-2'], b: ['pm-2', 'pm-3'], c: ['pm-3', 'pm-1'] }));
    assert.deepEqual([...copies(plan), ...moves(plan)], []);
    assert.equal(plan.copies!.scoreBefore, 0);
  });

  test('a node whose VG has no room for the LV never gets it, even where the score would want it', () => {
    const four = config('', [...NODES, 'pm-4']);
    const vg = (sizeBytes: number, freeBytes: number) => ({ vg: { name: 'vg-pmc', sizeBytes, freeBytes, extentSizeBytes: 4 * MiB } });
    // pm-2 full (x's 1 GiB copy half of it); pm-3 a 0.9 GiB VG, empty; pm-4 half full but using x's minor.
    // Moving x's copy to pm-3 would lower the spread (shares .5 1 0 .5 -> .5 .5 1.11 .5), but 1 GiB does not fit in 0.9.
    const vgs = { 'pm-1': vg(2 * GiB, GiB), 'pm-2': vg(2 * GiB, 0), 'pm-3': vg(0.9 * GiB, 0.9 * GiB), 'pm-4': vg(2 * GiB, GiB) };
    const clash = { 'pm-4': { drbdResources: [{ ...pairedVm('other', 'pm-4', 'pm-2', 10)['pm-4']!.drbdResources![0]!, hosts: [], peers: [] }] } };
    assert.deepEqual(copies(secondaries(build({ x: ['pm-1', 'pm-2'] }, four, vgs, clash), { cfg: four })), []);
    const roomy = { 'pm-3': vg(1.1 * GiB, 1.1 * GiB) };
    assert.deepEqual(copies(secondaries(build({ x: ['pm-1', 'pm-2'] }, four, vgs, clash, roomy), { cfg: four })), ['x pm-2 -> pm-3'], 'with room for it, it goes');
  });

  test('a node without the memory to start the VM after a failover gets no copy of it', () => {
    const four = config('', [...NODES, 'pm-4']);
    assert.deepEqual(copies(secondaries(build(NEW_NODE, four), { cfg: four })), ['a pm-2 -> pm-3'], 'the first of the two empty nodes');
    // pm-3 with 768 MiB of memory: less 512 MiB for itself, a 512 MiB VM could not start there.
    const noMemory = { 'pm-3': { memory: { totalBytes: 768 * MiB, availableBytes: 700 * MiB } } };
    assert.deepEqual(copies(secondaries(build(NEW_NODE, four, noMemory), { cfg: four })), ['a pm-2 -> pm-4']);
  });

  test('a node using the VM\'s DRBD minor or port for another resource gets no copy of it', () => {
    // pm-3 runs a one-node resource on minor 10, a's minor: b's copy goes instead.
    const clash = { 'pm-3': { drbdResources: [{ ...pairedVm('other', 'pm-3', 'pm-2', 10)['pm-3']!.drbdResources![0]!, hosts: [], peers: [] }] } };
    assert.deepEqual(copies(secondaries(build(NEW_NODE, CFG, clash))), ['b pm-2 -> pm-3']);
  });

  test('ignored VMs and VMs whose pair is not Connected and UpToDate never move their copies', () => {
    const syncing = pairedVm('syncing', 'pm-1', 'pm-2', 30, 512 * MiB);
    syncing['pm-1']!.drbdResources = [{ ...syncing['pm-1']!.drbdResources![0]!, peers: [peer('pm-2', { diskState: 'Inconsistent', replication: 'SyncSource' })] }];
    const plan = secondaries(build({ 'ignore-a': ['pm-1', 'pm-2'], b: ['pm-1', 'pm-2'] }, CFG, syncing));
    assert.deepEqual(copies(plan), ['b pm-2 -> pm-3']);
    const none = secondaries(build({ 'ignore-a': ['pm-1', 'pm-2'] }, CFG, syncing));
    assert.deepEqual(copies(none), [], 'only the ignored and the resyncing VM: nothing moves');
  });

  test('--max-moves bounds copies and migrations together, copies first', () => {
    assert.deepEqual([...copies(secondaries(build(NEW_NODE), { maxMoves: 1 })), ...moves(secondaries(build(NEW_NODE), { maxMoves: 1 }))], ['a pm-2 -> pm-3']);
    const two = secondaries(build(NEW_NODE), { maxMoves: 2 });
    assert.deepEqual([...copies(two), ...moves(two)], ['a pm-2 -> pm-3', 'a pm-1 -> pm-3']);
  });
});

describe('cluster rebalance --secondaries: vm peer-recreate\'s and vm mv\'s checks', () => {
  const facts: MigrateFacts = Object.fromEntries(NODES.map((n) => [n, { bridges: { br0: true }, files: {} }]));

  test('each copy move is checked as vm peer-recreate checks it; the migrations are checked on the new pairs', async () => {
    const state = build(NEW_NODE);
    const asked: string[] = [];
    const checked = await checkRebalance(state, CFG, { maxMoves: undefined, timeoutSeconds: 600, secondaries: true }, async (vms, after) => {
      asked.push(...vms.map((vm) => `${vm.name} on ${vm.nodes.join(' and ')}`));
      assert.notEqual(after, state, 'the facts are read for the pairs as they will be');
      return facts;
    });
    assert.deepEqual(checked.copies.map((t) => `${t.vm}: ${t.oldPeer} -> ${t.newPeer}, kept on ${t.primary}`), ['a: pm-2 -> pm-3, kept on pm-1']);
    assert.deepEqual(asked, ['a on pm-1 and pm-3']);
    assert.deepEqual(checked.migrations.map((m) => `${m.vm} ${m.source} -> ${m.target}`), ['a pm-1 -> pm-3']);
  });

  test('a copy move vm peer-recreate refuses is held with its reason, and the plan made again without it', async () => {
    // pm-3 has a leftover resource file of a: the planner does not see it, vm peer-recreate does.
    const state = build(NEW_NODE, CFG, { 'pm-3': { drbdResourceFiles: ['/etc/drbd.d/a.res'] } });
    const checked = await checkRebalance(state, CFG, { maxMoves: undefined, timeoutSeconds: 600, secondaries: true }, async () => facts);
    assert.deepEqual(copies(checked.plan), ['b pm-2 -> pm-3']);
    assert.deepEqual(checked.plan.held.map((h) => `${h.vm}: ${h.why}`), ['a: vm peer-recreate refuses moving its standby copy to pm-3: pm-3 has /etc/drbd.d/a.res of a already']);
    assert.deepEqual(checked.migrations.map((m) => `${m.vm} ${m.source} -> ${m.target}`), ['a pm-1 -> pm-2']);
  });
});

describe('cluster rebalance --secondaries: generated clusters of 100 nodes (5 of them new and empty) and 2000 VMs', () => {
  for (const seed of [1, 2]) {
    test(`seed ${seed}: every copy move valid, the disk score lower after each, the new nodes filled, migrations on the new pairs`, () => {
      const { state } = generatedCluster(100, 2000, seed, 5);
      const started = performance.now();
      const plan = planRebalance(state, { secondaries: { nodes: state.nodes.map((n) => ({ name: n.name })), ignorePrefix: 'ignore' } });
      // Not asserted (no timed assertions): how long the plan takes at this size.
      console.log(`# seed ${seed}: ${plan.copies!.moves.length} copy moves and ${plan.moves.length} migrations planned in ${Math.round(performance.now() - started)} ms`);
      const empty = new Set(['pm-96', 'pm-97', 'pm-98', 'pm-99', 'pm-100']);
      assert.ok(plan.copies!.moves.length > 0);

      const seen = new Set<string>();
      let score = plan.copies!.scoreBefore;
      for (const m of plan.copies!.moves) {
        const vm = state.vms.find((v) => v.name === m.vm)!;
        assert.ok(!seen.has(m.vm), `${m.vm}'s copy moves once`);
        seen.add(m.vm);
        assert.ok(!vm.ignored, `${m.vm} is not ignored`);
        assert.deepEqual(vm.primaryOn, [m.primary]);
        assert.deepEqual([...vm.nodes].sort(), [m.primary, m.from].sort(), `${m.vm}'s copy moves from its peer`);
        assert.ok(!vm.nodes.includes(m.to), `${m.vm}'s copy goes to a node outside its pair`);
        assert.ok(vm.replication?.disks === 'UpToDate/UpToDate' && vm.replication.connection === 'Connected', `${m.vm}'s pair is healthy`);
        assert.equal(m.scoreBefore, score);
        assert.ok(m.scoreAfter < m.scoreBefore, `${m.vm}: the disk score goes down`);
        score = m.scoreAfter;
      }
      assert.ok([...empty].every((n) => plan.copies!.moves.some((m) => m.to === n)), 'every new node receives copies');
      // The projected cluster is what the moves make: planned again, its disk score is what the plan says, and no copy moves.
      const again = planCopyMoves(plan.copies!.projected, { nodes: state.nodes.map((n) => ({ name: n.name })), ignorePrefix: 'ignore' }, { maxMoves: Infinity, refused: new Map() });
      assert.ok(Math.abs(again.scoreBefore - plan.copies!.scoreAfter) < 1e-9, `the projected cluster scores ${again.scoreBefore}, the plan said ${plan.copies!.scoreAfter}`);
      assert.deepEqual(again.moves, []);

      const projected = plan.copies!.projected;
      for (const m of plan.moves) {
        const vm = projected.vms.find((v) => v.name === m.vm)!;
        assert.deepEqual([...vm.nodes].sort(), [m.from, m.to].sort(), `${m.vm} migrates to its peer as the copy moves leave it`);
      }
      assert.ok(plan.moves.some((m) => empty.has(m.to)), 'running VMs migrate onto the new nodes');
      assert.ok(plan.scoreAfter < planRebalance(state).scoreAfter, 'with the copies moved, the load spreads further than by migrations alone');
    });
  }

  test('--max-moves 30: at most 30 moves, copies and migrations together', () => {
    const { state } = generatedCluster(100, 2000, 1, 5);
    const plan = planRebalance(state, { maxMoves: 30, secondaries: { nodes: state.nodes.map((n) => ({ name: n.name })), ignorePrefix: 'ignore' } });
    assert.equal(plan.copies!.moves.length + plan.moves.length, 30);
  });
});

describe('cluster rebalance --secondaries: the report', () => {
  const view = (report: RebalanceReport) => rebalanceView(report, { style: plainStyle, headers: true, verbose: false });
  const facts: MigrateFacts = Object.fromEntries(NODES.map((n) => [n, { bridges: { br0: true }, files: {} }]));

  async function report(status: RebalanceReport['outcomes'][number]['status']): Promise<RebalanceReport> {
    const state = build(NEW_NODE);
    const { plan, copies: targets, migrations } = await checkRebalance(state, CFG, { maxMoves: undefined, timeoutSeconds: 600, secondaries: true }, async () => facts);
    const c = plan.copies!;
    return {
      checksMs: 1500, scoreBefore: plan.scoreBefore, scoreAfter: plan.scoreAfter, held: plan.held, before: plan.before, after: plan.after,
      disk: { scoreBefore: c.scoreBefore, scoreAfter: c.scoreAfter, before: c.before, after: c.after },
      outcomes: [
        ...c.moves.map((m, i) => ({ ...m, status, plan: planPeerRecreate(state, CFG, targets[i]!, { 'pm-1': '10.0.0.1', 'pm-3': '10.0.0.3' }), migration: undefined })),
        ...plan.moves.map((m, i) => ({ ...m, status, plan: migrationAsPlan(migrations[i]!), migration: undefined })),
      ],
    };
  }

  test('the dry run: each move with its kind, the disk score and the load score, then every plan', async () => {
    const text = view(await report('dry-run'));
    assert.match(text, /^dry run, nothing changed: rebalance: 1 standby copy moved, 1 migration, score \d\.\d{3} -> \d\.\d{3} \(0: every node carries the same share\), disk score 0\.\d{3} -> 0\.\d{3}$/m);
    assert.match(text, /^ {2}1\. a \(move standby copy pm-2 -> pm-3\), disk score \d\.\d{3} -> \d\.\d{3}: pm-2 holds 2 copies/m);
    assert.match(text, /^ {2}2\. a \(migrate pm-1 -> pm-3\), score \d\.\d{3} -> \d\.\d{3}: pm-1 runs 2 of 2 VMs/m);
    assert.match(text, /^ {2}pm-3: 0 copies, 0% of its volume group -> 1 copy, 13% of its volume group$/m);
    assert.match(text, /^move a's standby copy from pm-2 to pm-3, resynced from pm-1 \(1 GiB\) \(\d+ steps\)$/m);
    assert.match(text, /^migrate a from pm-1 to pm-3 \(\d+ steps\)$/m);
  });

  test('nothing to do: both the load and the copies are balanced', () => {
    const plan = secondaries(build({ a: ['pm-1', 'pm-2'], b: ['pm-2', 'pm-3'], c: ['pm-3', 'pm-1'] }));
    const c = plan.copies!;
    const text = view({
      checksMs: 0, scoreBefore: plan.scoreBefore, scoreAfter: plan.scoreAfter, held: plan.held, before: plan.before, after: plan.after, outcomes: [],
      disk: { scoreBefore: c.scoreBefore, scoreAfter: c.scoreAfter, before: c.before, after: c.after },
    });
    assert.equal(text, 'the cluster is balanced: score 0.000; no live migration of a running VM to its DRBD peer lowers it\n'
      + 'the copies are balanced: disk score 0.000; no move of a standby copy to another node lowers it');
  });
});
