// The rebalance planner (pmc cluster rebalance) on cluster states built from probe facts: which
// running VMs move to their DRBD peers and why, what never moves, the memory a peer must have,
// --max-moves, a second plan on the result, generated clusters of 100 nodes and 2000 VMs, the
// checks of vm mv applied to every move, and the report.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ClusterState } from '../../../src/model/cluster.js';
import { parseRebalanceArgs } from '../../../src/ops/cluster/rebalance-args.js';
import { checkRebalance, type RebalanceReport } from '../../../src/ops/cluster/rebalance.js';
import { planRebalance, scoreOf, type RebalancePlan } from '../../../src/ops/cluster/rebalance-plan.js';
import { freeMemory } from '../../../src/ops/vm/add-plan.js';
import type { MigrateFacts } from '../../../src/ops/vm/migrate-plan.js';
import type { NodeFacts } from '../../../src/probe/types.js';
import { rebalanceView } from '../../../src/render/views/rebalance.js';
import { plainStyle } from '../../../src/render/style.js';
import { PmcError } from '../../../src/util/errors.js';
import { domain, lv, pairedVm, peer } from '../model/factory.js';
import { generatedCluster } from './rebalance-helpers.js';
import { cluster, config, GiB, MiB } from './vm-add-helpers.js';

const CFG = config();

/** VM name -> [where it runs, its DRBD peer, memory]. */
type Layout = Record<string, [string, string, number]>;

function build(layout: Layout, ...extra: Record<string, Partial<NodeFacts>>[]): ClusterState {
  return cluster(CFG, ...Object.entries(layout).map(([name, [home, other, memory]], i) => pairedVm(name, home, other, 10 + i, memory)), ...extra);
}

/** The layout once the plan's moves are done. */
function moved(layout: Layout, plan: RebalancePlan): Layout {
  const out = { ...layout };
  for (const m of plan.moves) out[m.vm] = [m.to, m.from, layout[m.vm]![2]];
  return out;
}

const moves = (plan: RebalancePlan) => plan.moves.map((m) => `${m.vm} ${m.from} -> ${m.to}`);

/** Three VMs of 512 MiB running on pm-1 (2 GiB, 2 CPUs, as every node here), two with their peer on pm-2, one on pm-3. */
const THREE_ON_PM1: Layout = { a: ['pm-1', 'pm-2', 512 * MiB], b: ['pm-1', 'pm-3', 512 * MiB], c: ['pm-1', 'pm-2', 512 * MiB] };

describe('cluster rebalance: the plan', () => {
  test('three VMs on pm-1: two move to their peers, the best move first, each with its reason, until no node runs more than one', () => {
    const plan = planRebalance(build(THREE_ON_PM1));
    assert.deepEqual(moves(plan), ['a pm-1 -> pm-2', 'b pm-1 -> pm-3']);
    assert.equal(plan.moves[0]!.reason, 'pm-1 runs 3 of 3 VMs: 75% of its memory, 3 vCPUs on 2 CPUs; pm-2 runs 0: 0%, 0 vCPUs on 2 CPUs');
    assert.equal(plan.moves[1]!.reason, 'pm-1 runs 2 of 3 VMs: 50% of its memory, 2 vCPUs on 2 CPUs; pm-3 runs 0: 0%, 0 vCPUs on 2 CPUs');
    // Memory shares 0.75/0/0: sd 0.354; vCPU shares 1.5/0/0: sd 0.707, a quarter of it 0.177.
    assert.equal(plan.scoreBefore.toFixed(3), '0.530');
    assert.equal(plan.moves[0]!.scoreBefore, plan.scoreBefore);
    assert.equal(plan.moves[1]!.scoreBefore, plan.moves[0]!.scoreAfter);
    assert.ok(plan.moves[0]!.scoreAfter < plan.scoreBefore);
    assert.equal(plan.scoreAfter, 0, 'one VM on each node: every node carries the same share');
    assert.deepEqual(plan.after.map((l) => `${l.node} ${l.vms}`), ['pm-1 1', 'pm-2 1', 'pm-3 1']);
    assert.deepEqual(plan.held, []);
  });

  test('a second plan on the result has nothing to move', () => {
    const first = planRebalance(build(THREE_ON_PM1));
    const second = planRebalance(build(moved(THREE_ON_PM1, first)));
    assert.deepEqual(second.moves, []);
    assert.equal(second.scoreBefore, first.scoreAfter);
  });

  test('a balanced cluster yields no moves', () => {
    const plan = planRebalance(build({ a: ['pm-1', 'pm-2', 512 * MiB], b: ['pm-2', 'pm-3', 512 * MiB], c: ['pm-3', 'pm-1', 512 * MiB] }));
    assert.deepEqual(plan.moves, []);
    assert.equal(plan.scoreBefore, 0);
  });

  test('ignored, one-node, shut-off and resyncing VMs never move; the running ones among them are held with why', () => {
    const solo = { 'pm-1': { domains: [domain('solo', 'running', { minor: 20, memoryBytes: 256 * MiB })], lvs: [lv('solo')] } };
    const off = pairedVm('off', 'pm-1', 'pm-3', 21, 256 * MiB);
    off['pm-1']!.domains = [domain('off', 'shut off', { minor: 21, memoryBytes: 256 * MiB })];
    const syncing = pairedVm('syncing', 'pm-1', 'pm-3', 22, 256 * MiB);
    syncing['pm-1']!.drbdResources = [{ ...syncing['pm-1']!.drbdResources![0]!, peers: [peer('pm-3', { diskState: 'Inconsistent', replication: 'SyncSource' })] }];
    const plan = planRebalance(build({ 'ignore-a': ['pm-1', 'pm-2', 512 * MiB], b: ['pm-1', 'pm-3', 512 * MiB] }, solo, off, syncing));
    assert.deepEqual(moves(plan), ['b pm-1 -> pm-3']);
    assert.deepEqual(plan.held.map((h) => `${h.vm}: ${h.why}`), [
      'ignore-a: ignored (the ignore prefix)',
      'solo: no DRBD peer: a one-node VM cannot migrate',
      'syncing: its DRBD resource is not Connected and UpToDate on both nodes of its pair',
    ]);
    assert.match(plan.moves[0]!.reason, /^pm-1 runs 4 of 4 VMs: 75% of its memory/, 'the VMs that stay count in the load');
  });

  test('a move that gains next to nothing is not made: one VM between two nodes a few pages of memory apart', () => {
    const two = config('', ['pm-1', 'pm-2']);
    const vm = pairedVm('a', 'pm-2', 'pm-1', 10, 512 * MiB);
    // pm-1 has 16 KiB more memory than pm-2: the VM's share would be a hair smaller there.
    const state = cluster(two, vm, { 'pm-1': { memory: { totalBytes: 2 * GiB + 16 * 1024, availableBytes: 2 * GiB } } });
    assert.deepEqual(moves(planRebalance(state)), []);
  });

  test('a peer without the memory available for the VM, or whose defined VMs do not fit, receives nothing', () => {
    const plan = planRebalance(build(THREE_ON_PM1, { 'pm-2': { memory: { totalBytes: 2 * GiB, availableBytes: 256 * MiB } } }));
    assert.deepEqual(moves(plan), ['b pm-1 -> pm-3']);
    // pm-3 has 768 MiB: less 512 MiB for itself, b (defined there) does not fit.
    const small = build(THREE_ON_PM1, { 'pm-3': { memory: { totalBytes: 768 * MiB, availableBytes: 700 * MiB } } });
    assert.ok(freeMemory(small.nodes.find((n) => n.name === 'pm-3')!) < 0);
    assert.deepEqual(moves(planRebalance(small)), ['a pm-1 -> pm-2']);
  });

  test('the memory available on a peer counts every VM moved there before: with room for one, one moves', () => {
    const two = config('', ['pm-1', 'pm-2']);
    const layout = Object.fromEntries(['a', 'b', 'c', 'd'].map((n, i) => [n, pairedVm(n, 'pm-1', 'pm-2', 10 + i, 256 * MiB)]));
    const roomy = planRebalance(cluster(two, ...Object.values(layout)));
    assert.deepEqual(moves(roomy), ['a pm-1 -> pm-2', 'b pm-1 -> pm-2'], 'two of four: two on each node');
    const tight = planRebalance(cluster(two, ...Object.values(layout), { 'pm-2': { memory: { totalBytes: 2 * GiB, availableBytes: 300 * MiB } } }));
    assert.deepEqual(moves(tight), ['a pm-1 -> pm-2']);
  });

  test('--max-moves: at most that many, the best first', () => {
    const plan = planRebalance(build(THREE_ON_PM1), { maxMoves: 1 });
    assert.deepEqual(moves(plan), ['a pm-1 -> pm-2']);
    assert.equal(plan.scoreAfter, plan.moves[0]!.scoreAfter);
    assert.deepEqual(parseRebalanceArgs({ maxMoves: '3', parallel: '2', timeout: '900', dryRun: true }), { maxMoves: 3, parallel: 2, timeoutSeconds: 900, dryRun: true });
    assert.equal(parseRebalanceArgs({ parallel: '1', timeout: '600', dryRun: false }).maxMoves, undefined);
    for (const bad of ['0', '-1', '1.5', 'abc', '']) {
      assert.throws(() => parseRebalanceArgs({ maxMoves: bad, parallel: '1', timeout: '600', dryRun: false }), (err: unknown) => err instanceof PmcError && err.code === 'PMC_E_USAGE' && /--max-moves/.test(err.message));
    }
  });
});

describe('cluster rebalance: generated clusters of 100 nodes and 2000 VMs', () => {
  for (const seed of [1, 2, 3]) {
    test(`seed ${seed}: every move valid, the score strictly lower after each, and what the plan says it reaches is what the moved cluster scores`, () => {
      const generated = generatedCluster(100, 2000, seed);
      const { state } = generated;
      const plan = planRebalance(state);
      assert.ok(plan.moves.length > 0, 'the generated cluster is uneven: there is something to move');
      assert.equal(plan.before.length, 100);

      const seen = new Set<string>();
      const incoming = new Map<string, number>();
      let score = plan.scoreBefore;
      for (const m of plan.moves) {
        const vm = state.vms.find((v) => v.name === m.vm)!;
        assert.ok(!seen.has(m.vm), `${m.vm} moves once`);
        seen.add(m.vm);
        assert.ok(!vm.ignored, `${m.vm} is not ignored`);
        assert.deepEqual(vm.runningOn, [m.from], `${m.vm} runs where it moves from`);
        const hosts = vm.replicas.find((r) => r.node === m.from)!.resource!.hosts.map((h) => h.name).sort();
        assert.deepEqual(hosts, [m.from, m.to].sort(), `${m.vm} moves to its DRBD peer`);
        const target = state.nodes.find((n) => n.name === m.to)!;
        const there = (incoming.get(m.to) ?? 0) + m.memoryBytes;
        incoming.set(m.to, there);
        assert.ok(freeMemory(target) >= 0 && there <= target.facts!.memory!.availableBytes, `${m.to} has the memory for ${m.vm} and the VMs moved there before it`);
        assert.equal(m.scoreBefore, score);
        assert.ok(m.scoreAfter < m.scoreBefore, `${m.vm}: the score goes down`);
        score = m.scoreAfter;
      }
      assert.equal(plan.scoreAfter, score);
      assert.ok(Math.abs(scoreOf(plan.after) - plan.scoreAfter) < 1e-9);
      const again = planRebalance(generated.rebuild(new Map(plan.moves.map((m) => [m.vm, m.to]))));
      assert.ok(Math.abs(again.scoreBefore - plan.scoreAfter) < 1e-9, `the moved cluster scores ${again.scoreBefore}, the plan said ${plan.scoreAfter}`);
      assert.ok(plan.held.some((h) => h.why.startsWith('ignored')) && plan.held.some((h) => h.why.startsWith('no DRBD peer')) && plan.held.some((h) => h.why.startsWith('its DRBD resource')));
    });
  }

  test('--max-moves 10 takes the first ten moves of the full plan', () => {
    const { state } = generatedCluster(100, 2000, 1);
    const full = planRebalance(state);
    assert.ok(full.moves.length > 10);
    assert.deepEqual(planRebalance(state, { maxMoves: 10 }).moves, full.moves.slice(0, 10));
  });
});

describe('cluster rebalance: vm mv\'s checks on every move', () => {
  test('a VM vm mv refuses stays where it is, with vm mv\'s reason, and the plan is made again without it', async () => {
    const state = build(THREE_ON_PM1);
    // pm-2 has no bridge br0: a and c cannot migrate there.
    const facts: MigrateFacts = { 'pm-1': { bridges: { br0: true }, files: {} }, 'pm-2': { bridges: { br0: false }, files: {} }, 'pm-3': { bridges: { br0: true }, files: {} } };
    const asked: string[][] = [];
    const checked = await checkRebalance(state, CFG, { maxMoves: undefined, timeoutSeconds: 600 }, async (vms) => {
      asked.push(vms.map((vm) => vm.name));
      return facts;
    });
    assert.deepEqual(asked, [['a', 'b'], ['b', 'c'], ['b']], 'the facts of the VMs each plan moves');
    assert.deepEqual(moves(checked.plan), ['b pm-1 -> pm-3']);
    assert.deepEqual(checked.migrations.map((m) => `${m.vm} ${m.source} -> ${m.target}`), ['b pm-1 -> pm-3']);
    assert.deepEqual(checked.plan.held.map((h) => `${h.vm}: ${h.why} (fix: ${h.hint})`), ['a', 'c'].map((vm) =>
      `${vm}: vm mv refuses it: pm-2 has no bridge br0 for its NIC 52:54:00:12:34:56 (fix: create the bridge on pm-2 (pmc pm init pm-2 checks it))`));
  });

  test('when no move lowers the score, the nodes are asked nothing', async () => {
    const checked = await checkRebalance(build({ a: ['pm-1', 'pm-2', 512 * MiB] }, pairedVm('b', 'pm-2', 'pm-1', 30)), CFG, { maxMoves: undefined, timeoutSeconds: 600 },
      () => assert.fail('no move, nothing to check'));
    assert.deepEqual(checked.plan.moves, []);
  });
});

describe('cluster rebalance: the report', () => {
  const view = (report: RebalanceReport) => rebalanceView(report, { style: plainStyle, headers: true, verbose: false });

  async function report(status: (i: number) => RebalanceReport['outcomes'][number]['status']): Promise<RebalanceReport> {
    const facts: MigrateFacts = Object.fromEntries(['pm-1', 'pm-2', 'pm-3'].map((n) => [n, { bridges: { br0: true }, files: {} }]));
    const state = build({ ...THREE_ON_PM1, 'ignore-x': ['pm-3', 'pm-1', 64 * MiB] });
    const { plan, migrations } = await checkRebalance(state, CFG, { maxMoves: undefined, timeoutSeconds: 600 }, async () => facts);
    const { migrationAsPlan } = await import('../../../src/ops/vm/migrate-plan.js');
    return {
      checksMs: 1500, scoreBefore: plan.scoreBefore, scoreAfter: plan.scoreAfter, held: plan.held, before: plan.before, after: plan.after,
      outcomes: plan.moves.map((m, i) => {
        const s = status(i);
        return {
          ...m, status: s, plan: migrationAsPlan(migrations[i]!),
          migration: s === 'done' || s === 'failed' ? {
            vm: m.vm, source: m.from, target: m.to, status: s === 'done' ? 'migrated' : 'failed', error: s === 'done' ? undefined : 'pm-1: live-migrate a: exit 1',
            hint: undefined, plan: undefined, done: [], failed: undefined, recovery: undefined, timings: { roleChangesMs: 900, migrateMs: 4100, totalMs: 5000 },
          } : undefined,
        };
      }),
    };
  }

  test('the dry run: the score before and after, each move with its reason, the loads that change, what is held, then every command', async () => {
    const text = view(await report(() => 'dry-run'));
    assert.match(text, /^dry run, nothing changed: rebalance: 2 migrations, score \d\.\d{3} -> \d\.\d{3} \(0: every node carries the same share\)\n {2}1\. a \(migrate pm-1 -> pm-2\), score \d\.\d{3} -> \d\.\d{3}: pm-1 runs 3 of 4 VMs: 75% of its memory/);
    assert.match(text, /^ {2}pm-1: 3 VMs, 75% of its memory, 3 vCPUs on 2 CPUs -> 1 VM, 25% of its memory, 1 vCPU on 2 CPUs$/m);
    assert.match(text, /^not moved: ignore-x: ignored \(the ignore prefix\)$/m);
    assert.match(text, /^migrate a from pm-1 to pm-2 \(\d+ steps\)$/m);
    assert.match(text, /^migrate b from pm-1 to pm-3 \(\d+ steps\)$/m);
  });

  test('a failed run says what moved and what did not, and that a second run plans again', async () => {
    const text = view(await report((i) => (i === 0 ? 'failed' : 'not started')));
    assert.match(text, /^a: FAILED migrating pm-1 -> pm-2: pm-1: live-migrate a: exit 1$/m);
    assert.match(text, /^b \(migrate pm-1 -> pm-3\): not started/m);
    assert.match(text, /^NOT rebalanced\n {2}moved: nothing\n {2}not moved: a \(migrate pm-1 -> pm-2\) \(failed\), b \(migrate pm-1 -> pm-3\) \(not started\)\n {2}then: fix what failed and run pmc cluster rebalance again/m);
    const done = view(await report(() => 'done'));
    assert.match(done, /^a: migrated pm-1 -> pm-2 in 5\.0 s/m);
    assert.match(done, /^rebalanced: score \d\.\d{3} -> 0\.\d{3}$/m);
  });

  test('nothing to do: the cluster is balanced', () => {
    const plan = planRebalance(build({ a: ['pm-1', 'pm-2', 512 * MiB] }, pairedVm('b', 'pm-2', 'pm-1', 30, 512 * MiB), pairedVm('c', 'pm-3', 'pm-1', 31, 512 * MiB)));
    const text = view({ checksMs: 0, scoreBefore: plan.scoreBefore, scoreAfter: plan.scoreAfter, held: plan.held, before: plan.before, after: plan.after, outcomes: [] });
    assert.equal(text, 'the cluster is balanced: score 0.000; no live migration of a running VM to its DRBD peer lowers it');
  });
});
