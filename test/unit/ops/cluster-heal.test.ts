import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Config } from '../../../src/config/load.js';
import type { OpContext } from '../../../src/ops/engine/context.js';
import { healReport, type HealResult } from '../../../src/ops/cluster/heal.js';
import { planHeal, type HealAction } from '../../../src/ops/cluster/heal-plan.js';
import { fenceNode } from '../../../src/ops/vm/failover.js';
import { healView } from '../../../src/render/views/heal.js';
import { plainStyle } from '../../../src/render/style.js';
import type { ClusterState } from '../../../src/model/cluster.js';
import { pairedVm } from '../model/factory.js';
import { afterCrash, afterFailover } from './failover-helpers.js';
import { cluster, config, withNodeDown } from './vm-add-helpers.js';

const CFG = config();

/** CFG where `node` has a fence command. */
function fenced(node: string, fence = 'ipmitool chassis power off'): Config {
  return { ...CFG, nodes: CFG.nodes.map((n) => (n.name === node ? { ...n, fence } : n)) };
}

/** The exit status heal reports for a state, as a run that applied every planned action would. */
function status(state: ClusterState, actions: HealAction[]): string {
  const result: HealResult = { mode: 'dry-run', healthy: actions.length === 0, outcomes: actions.map((action) => ({ action, result: undefined, error: undefined })) };
  return healReport(state, result).status;
}

const commands = (action: HealAction | undefined): string[] => (action && 'plan' in action ? action.plan.steps.map((s) => `${s.node}: ${s.command.split(' && ')[0]}`) : []);

test('heal: a dead node with a fence command: its VM fails over to the peer, fenced first', () => {
  const cfg = fenced('pm-1');
  const state = withNodeDown(cfg, 'pm-1', afterCrash());
  const actions = planHeal(state, cfg);
  assert.deepEqual(actions.map((a) => [a.kind, a.node]), [['failover', 'pm-1']]);
  const failover = actions[0] as Extract<HealAction, { kind: 'failover' }>;
  assert.deepEqual(failover.vms, ['web']);
  assert.equal(failover.fence, 'ipmitool chassis power off');
  assert.deepEqual(commands(failover), [
    'pm-2: mkdir -p /var/lib/pmc/authoritative',
    'pm-2: drbdadm -- --force primary web',
    'pm-2: virsh start uuid-of-web',
  ]);
  assert.match(failover.plan.notes[0]!, /pm-1 is fenced first/);
  assert.equal(status(state, actions), 'partial', 'pm-1 still does not answer: exit 3');
});

test('heal: a dead node without a fence command: nothing planned for it, the operator is told what to do, exit 1', () => {
  const state = withNodeDown(CFG, 'pm-1', afterCrash(), afterCrash({}, 'db', 11));
  const actions = planHeal(state, CFG);
  assert.deepEqual(actions.map((a) => a.kind), ['blocked']);
  const blocked = actions[0] as Extract<HealAction, { kind: 'blocked' }>;
  assert.equal(blocked.reason, 'pm-1 does not answer and has no fence command: its VMs db, web stay down');
  assert.equal(blocked.fix, 'make sure it is off, then: pmc pm failover pm-1');
  assert.ok(!('plan' in blocked), 'no step to apply');
  assert.equal(status(state, actions), 'failed');
});

test('heal: a node back after a failover rejoins: its stale copy resyncs from the survivor, which is never discarded', () => {
  const state = cluster(CFG, afterFailover());
  const actions = planHeal(state, CFG);
  assert.deepEqual(actions.map((a) => [a.kind, a.node]), [['rejoin', 'pm-1']]);
  assert.deepEqual((actions[0] as Extract<HealAction, { kind: 'rejoin' }>).vms, ['web']);
  const steps = commands(actions[0]);
  assert.ok(steps.includes('pm-1: drbdadm -- --discard-my-data connect web'));
  assert.ok(steps.includes('pm-2: rm -f /var/lib/pmc/authoritative/web'));
  assert.ok(!steps.some((s) => s.startsWith('pm-2:') && s.includes('discard-my-data')));
  assert.equal(status(state, actions), 'ok');
});

test('heal: a stale copy whose survivor is not UpToDate is not rejoined: blocked, exit 1', () => {
  const parts = afterFailover();
  parts['pm-2']!.drbdResources = [{ ...parts['pm-2']!.drbdResources![0]!, diskState: 'Inconsistent' }];
  const state = cluster(CFG, parts);
  const actions = planHeal(state, CFG);
  assert.deepEqual(actions.map((a) => [a.kind, a.node]), [['blocked', 'pm-1']]);
  assert.match((actions[0] as Extract<HealAction, { kind: 'blocked' }>).notes.join('\n'), /NOT rejoined.*is Inconsistent/);
  assert.equal(status(state, actions), 'failed');
});

test('heal: VMs with the ignore prefix are never failed over nor rejoined', () => {
  const cfg = fenced('pm-1');
  const down = withNodeDown(cfg, 'pm-1', afterCrash(), afterCrash({}, 'ignore-db', 11));
  const actions = planHeal(down, cfg);
  assert.deepEqual(actions.map((a) => a.kind), ['failover']);
  assert.deepEqual((actions[0] as Extract<HealAction, { kind: 'failover' }>).vms, ['web']);
  assert.ok(!commands(actions[0]).some((c) => c.includes('ignore-db')));
  assert.match(actions[0]!.kind === 'failover' ? actions[0].plan.notes.join('\n') : '', /ignore-db not failed over: ignored/);

  const onlyIgnored = planHeal(withNodeDown(cfg, 'pm-1', afterCrash({}, 'ignore-db', 11)), cfg);
  assert.deepEqual(onlyIgnored.map((a) => a.kind), ['down'], 'pm-1 is still reported as down, nothing is planned');

  assert.deepEqual(planHeal(cluster(CFG, afterFailover(undefined, false, 'ignore-web')), CFG), [], 'an ignored stale copy is left as it is');
});

test('heal: the VMs already failed over and the node still down: nothing to do, exit 3; the fence is not run again', () => {
  const cfg = fenced('pm-1');
  const state = withNodeDown(cfg, 'pm-1', afterFailover());
  const actions = planHeal(state, cfg);
  assert.deepEqual(actions.map((a) => a.kind), ['down']);
  assert.match((actions[0] as Extract<HealAction, { kind: 'down' }>).reason, /^pm-1 does not answer; no VM to fail over from pm-1: web not failed over: runs on pm-2/);
  assert.equal(status(state, actions), 'partial');
});

test('heal: a healthy cluster: nothing to do, exit 0', () => {
  const state = cluster(fenced('pm-1'), pairedVm('web', 'pm-1', 'pm-2', 10), pairedVm('db', 'pm-2', 'pm-3', 11));
  const actions = planHeal(state, fenced('pm-1'));
  assert.deepEqual(actions, []);
  assert.equal(status(state, actions), 'ok');
});

test('the fence command is the proof: it must exit 0, and it is told which node', async () => {
  const lines: string[] = [];
  const ctx = { log: (l: string) => lines.push(l) } as unknown as OpContext;
  const node = { ...CFG.nodes[0]!, fence: 'test "$PMC_NODE" = pm-1 && test "$PMC_NODE_ADDRESS" = 10.99.0.11' };
  assert.equal(await fenceNode(ctx, node), 'pm-1 fenced by its fence command');
  await assert.rejects(fenceNode(ctx, { ...node, fence: 'echo no power >&2; exit 4' }), (err: { code: string; message: string }) =>
    err.code === 'PMC_E_FENCE' && /failed \(exit 4: no power\); nothing was changed/.test(err.message));
  assert.deepEqual(lines.length, 2);
});

test('heal view: healthy in one line; a blocked node with its fix', () => {
  const view = (state: ClusterState, cfg: Config) => {
    const actions = planHeal(state, cfg);
    return healView({ mode: 'applied', healthy: actions.length === 0, outcomes: actions.map((action) => ({ action, result: undefined, error: undefined })) }, { style: plainStyle, headers: true, verbose: false });
  };
  assert.match(view(cluster(CFG, pairedVm('web', 'pm-1', 'pm-2', 10)), CFG), /^cluster healthy/);
  assert.equal(view(withNodeDown(CFG, 'pm-1', afterCrash()), CFG), [
    'pm-1: NOT HEALED: pm-1 does not answer and has no fence command: its VMs web stay down',
    '  fix: make sure it is off, then: pmc pm failover pm-1',
  ].join('\n'));
});
