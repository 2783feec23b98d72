import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConnectionLossLog } from '../../../src/probe/parsers/kernel-log.js';
import { checkFailover, planFailover, selectFailovers } from '../../../src/ops/vm/failover.js';
import { decideStart } from '../../../src/ops/cluster/start.js';
import { verifyCluster } from '../../../src/ops/cluster/verify.js';
import { planRejoin } from '../../../src/ops/pm/rejoin.js';
import { domain, lv, pairedVm, peer, resource } from '../model/factory.js';
import { afterCrash, afterFailover } from './failover-helpers.js';
import { real } from '../probe/helpers.js';
import { cluster, config, withNodeDown } from './vm-add-helpers.js';

const CFG = config();
test('the kernel log of a real survivor: who was Primary and how the link ended', () => {
  const events = parseConnectionLossLog(real('kernel-log.connection-loss.pm-2.txt')).value;
  assert.deepEqual(events.map((e) => [e.resource, e.peerRoleBefore, e.to]), [
    ['fo-exp', 'Primary', 'Disconnecting'],
    ['fo-exp', 'Secondary', 'Disconnecting'],
  ]);
});

test('failover: survivor UpToDate, link lost to its Primary: record, forced promotion, start, each with its undo', () => {
  const state = withNodeDown(CFG, 'pm-1', afterCrash());
  const target = checkFailover(state, CFG, 'web');
  assert.deepEqual([target.lost, target.survivor, target.promote], ['pm-1', 'pm-2', true]);
  const plan = planFailover([target]);
  assert.equal(plan.title, 'fail web over from pm-1 to pm-2');
  assert.deepEqual(plan.steps.map((s) => [s.node, s.command.split(' && ')[0]]), [
    ['pm-2', 'mkdir -p /var/lib/pmc/authoritative'],
    ['pm-2', 'drbdadm -- --force primary web'],
    ['pm-2', 'virsh start uuid-of-web'],
  ]);
  assert.match(plan.steps[0]!.command, /printf '%s %s\\n' pm-1 "\$\(date -u/);
  assert.deepEqual(plan.steps.map((s) => s.undo?.command), ['rm -f /var/lib/pmc/authoritative/web', 'drbdadm secondary web', 'virsh destroy uuid-of-web']);
  assert.ok(plan.notes.some((n) => /then Primary\) was lost \(NetworkFailure\)/.test(n)));
});

test('failover refusals: node alive, still Connected, not UpToDate, StandAlone, disconnected on purpose, running, ignored, no DRBD', () => {
  const refused = (state: ReturnType<typeof cluster>, code: string, message: RegExp, vm = 'web') =>
    assert.throws(() => checkFailover(state, CFG, vm), (err: { code: string; message: string }) => err.code === code && message.test(err.message));
  refused(cluster(CFG, pairedVm('web', 'pm-1', 'pm-2', 10)), 'PMC_E_STATE', /runs on pm-1/);
  const stopped = pairedVm('web', 'pm-1', 'pm-2', 10);
  stopped['pm-1']!.domains = [domain('web', 'shut off')];
  refused(cluster(CFG, stopped), 'PMC_E_NODE_ALIVE', /both answer SSH/);
  refused(withNodeDown(CFG, 'pm-1', afterCrash({ peers: [peer('pm-1', { role: 'Primary' })] })), 'PMC_E_NODE_ALIVE', /still connected to pm-1/);
  for (const disk of ['Outdated', 'Consistent', 'Inconsistent'] as const) {
    refused(withNodeDown(CFG, 'pm-1', afterCrash({ diskState: disk })), 'PMC_E_STATE', new RegExp(`is ${disk}, not UpToDate`));
  }
  refused(withNodeDown(CFG, 'pm-1', afterCrash({ peers: [peer('pm-1', { connection: 'StandAlone', role: 'Unknown', diskState: 'DUnknown' })] })), 'PMC_E_STATE', /StandAlone .* disconnected before pm-1 went down/);
  refused(withNodeDown(CFG, 'pm-1', afterCrash({ lastConnectionLoss: { peerRoleBefore: 'Primary', to: 'TearDown', secondsSinceBoot: 3 } })), 'PMC_E_STATE', /on purpose \(TearDown/);
  refused(withNodeDown(CFG, 'pm-1', afterCrash({ splitBrain: true })), 'PMC_E_STATE', /split brain/);
  refused(withNodeDown(CFG, 'pm-1', afterCrash({ up: false, role: undefined, diskState: undefined, peers: [] })), 'PMC_E_STATE', /down on pm-2/);
  refused(withNodeDown(CFG, 'pm-1', afterCrash({}, 'ignore-web')), 'PMC_E_VM_IGNORED', /ignore prefix/, 'ignore-web');
  refused(withNodeDown(CFG, 'pm-1', { 'pm-2': { domains: [domain('solo', 'shut off')], lvs: [lv('solo')] } }), 'PMC_E_STATE', /no DRBD resource/, 'solo');
});

test('failover refused when a node of the pair is not in pmc.yaml', () => {
  const two = config('', ['pm-2', 'pm-3']);
  const state = withNodeDown(two, 'pm-3', afterCrash());
  assert.throws(() => checkFailover(state, two, 'web'), /names pm-1, which is not in pmc.yaml/);
});

test('pm failover: only VMs whose peer lost the node as Primary; the others are listed with the reason', () => {
  const state = withNodeDown(CFG, 'pm-1', afterCrash(), afterCrash({ lastConnectionLoss: { peerRoleBefore: 'Secondary', to: 'NetworkFailure', secondsSinceBoot: 9 } }, 'db', 11));
  const { targets, skipped } = selectFailovers(state, CFG, 'pm-1');
  assert.deepEqual(targets.map((t) => t.vm), ['web']);
  assert.match(skipped.join('\n'), /db not failed over: pm-1 was Secondary, not Primary/);
  assert.throws(() => selectFailovers(cluster(CFG, pairedVm('web', 'pm-1', 'pm-2', 10)), CFG, 'pm-1'), { code: 'PMC_E_NODE_ALIVE' });
  assert.throws(() => selectFailovers(state, CFG, 'pm-9'), { code: 'PMC_E_NODE_UNKNOWN' });
});

test('after a failover: vm ls flags the stale copy, verify names pm rejoin, cluster start never picks pm-1', () => {
  const state = cluster(CFG, afterFailover());
  const vm = state.vms.find((v) => v.name === 'web')!;
  assert.deepEqual(vm.authority, { node: 'pm-2', lostNode: 'pm-1', at: '2026-12-02T09:00:00Z' });
  assert.ok(vm.flags.includes('stale-copy'));
  const findings = verifyCluster(state).filter((f) => f.vm === 'web');
  assert.deepEqual(findings.map((f) => [f.code, f.node]), [['PMC_V_DRBD_STALE_COPY', 'pm-1']]);
  assert.match(findings[0]!.fix, /^pmc pm rejoin pm-1/);
  assert.equal(decideStart(vm, true).kind, 'skip', 'it runs on pm-2');

  // Powered off on pm-2 and pm-1 up as a crashed primary (UpToDate, StandAlone): looks like a split brain, but pm-2 wins.
  const stopped = afterFailover({ peers: [peer('pm-2', { connection: 'StandAlone', role: 'Unknown', diskState: 'DUnknown' })] });
  stopped['pm-2']!.domains = [domain('web', 'shut off')];
  stopped['pm-2']!.drbdResources = [resource('web', 'pm-2', ['pm-1', 'pm-2'], 10, { peers: [peer('pm-1', { connection: 'StandAlone', role: 'Unknown', diskState: 'DUnknown' })] })];
  const decision = decideStart(cluster(CFG, stopped).vms[0]!, true);
  assert.equal(decision.kind, 'start');
  assert.equal((decision as { node: string }).node, 'pm-2');

  // DRBD down on pm-2 (after drbd-up failed there): refused, never pm-1.
  stopped['pm-2']!.drbdResources = [resource('web', 'pm-2', ['pm-1', 'pm-2'], 10, { up: false, role: undefined, diskState: undefined, peers: [] })];
  assert.equal(decideStart(cluster(CFG, stopped).vms[0]!, false).kind, 'pending');
  const away = decideStart(cluster(CFG, stopped).vms[0]!, true);
  assert.equal(away.kind, 'refuse');
  assert.match((away as { fix: string }).fix, /never start web on pm-1/);
});

test('rejoin: the stale copy is attached without connecting, discards its data, resyncs from pm-2; then the record goes', () => {
  const state = cluster(CFG, afterFailover());
  const plan = planRejoin(state, CFG, 'pm-1');
  assert.deepEqual(plan.steps.map((s) => [s.node, s.command.startsWith('stalled=0') ? 'wait for the resync' : s.command]), [
    ['pm-1', 'drbdadm new-resource web && drbdadm new-minor web && drbdadm attach web'],
    ['pm-1', 'drbdadm secondary web'],
    ['pm-1', 'drbdadm -- --discard-my-data connect web'],
    ['pm-2', 'wait for the resync'],
    ['pm-2', 'rm -f /var/lib/pmc/authoritative/web'],
  ]);
  assert.ok(plan.steps.every((s) => !(s.node === 'pm-2' && /discard-my-data/.test(s.command))), 'never the other way round');
  assert.throws(() => planRejoin(withNodeDown(CFG, 'pm-1', afterFailover()), CFG, 'pm-1'), { code: 'PMC_E_NODE_UNREACHABLE' });
});

test('rejoin: a stale copy the node booted: powered off, disconnected, demoted; a StandAlone survivor connects too', () => {
  const standAlone = peer('pm-2', { connection: 'StandAlone', role: 'Unknown', diskState: 'DUnknown' });
  const parts = afterFailover({ role: 'Primary', peers: [standAlone] }, true);
  parts['pm-2']!.drbdResources = [resource('web', 'pm-2', ['pm-1', 'pm-2'], 10, { role: 'Primary', peers: [peer('pm-1', { connection: 'StandAlone', role: 'Unknown', diskState: 'DUnknown' })] })];
  const plan = planRejoin(cluster(CFG, parts), CFG, 'pm-1');
  assert.deepEqual(plan.steps.slice(0, 4).map((s) => [s.node, s.command]), [
    ['pm-1', 'virsh destroy uuid-of-web'],
    ['pm-1', 'drbdadm secondary web'],
    ['pm-1', 'drbdadm -- --discard-my-data connect web'],
    ['pm-2', 'drbdadm connect web'],
  ]);
});

test('rejoin: fine resources are only brought up; the survivor itself has nothing stale; ignored ones are left', () => {
  const down = { up: false, role: undefined, diskState: undefined, peers: [] };
  const fine = pairedVm('db', 'pm-3', 'pm-1', 11);
  fine['pm-1']!.drbdResources = [resource('db', 'pm-1', ['pm-3', 'pm-1'], 11, down)];
  const ignored = pairedVm('ignore-old', 'pm-3', 'pm-1', 12);
  ignored['pm-1']!.drbdResources = [resource('ignore-old', 'pm-1', ['pm-3', 'pm-1'], 12, down)];
  const plan = planRejoin(cluster(CFG, fine, ignored), CFG, 'pm-1');
  assert.deepEqual(plan.steps.map((s) => s.command), ['drbdadm up db']);
  assert.match(plan.notes.join('\n'), /ignore-old: ignored/);
  const survivor = planRejoin(cluster(CFG, afterFailover({})), CFG, 'pm-2');
  assert.deepEqual(survivor.steps, []);
  assert.match(survivor.notes.join('\n'), /pm-2 holds the current copy/);
});

test('rejoin: a split brain where the other side runs the VM is stale here; one where neither does is left to the operator', () => {
  const sb = { splitBrain: true, peers: [peer('pm-2', { connection: 'StandAlone', role: 'Unknown', diskState: 'DUnknown' })] };
  const parts = pairedVm('web', 'pm-2', 'pm-1', 10);
  parts['pm-1']!.drbdResources = [resource('web', 'pm-1', ['pm-1', 'pm-2'], 10, sb)];
  parts['pm-2']!.drbdResources = [resource('web', 'pm-2', ['pm-1', 'pm-2'], 10, { ...sb, role: 'Primary', peers: [peer('pm-1', { connection: 'StandAlone', role: 'Unknown', diskState: 'DUnknown' })] })];
  const plan = planRejoin(cluster(CFG, parts), CFG, 'pm-1');
  assert.ok(plan.steps.some((s) => s.node === 'pm-1' && s.command === 'drbdadm -- --discard-my-data connect web'));
  assert.ok(plan.steps.some((s) => s.node === 'pm-2' && s.command === 'drbdadm connect web'));
  assert.deepEqual(planRejoin(cluster(CFG, parts), CFG, 'pm-2').steps, [], 'the side that runs it is never discarded');
});
