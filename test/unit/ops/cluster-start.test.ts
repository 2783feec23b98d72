import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildCluster, type NodeProbe } from '../../../src/model/cluster.js';
import { decideStart, describeStart, planClusterStart, type StartDecision } from '../../../src/ops/cluster/start.js';
import type { DrbdPeer, DrbdResource, NodeFacts } from '../../../src/probe/types.js';
import { plainStyle } from '../../../src/render/style.js';
import { clusterStartView } from '../../../src/render/views/cluster-start.js';
import { CONFIG, domain, lv, pairedVm, peer, probes, resource } from '../model/factory.js';

const NODES = ['pm-1', 'pm-2', 'pm-3'];
const standalone: Partial<DrbdPeer> = { connection: 'StandAlone', role: 'Unknown', diskState: 'DUnknown', replication: 'Off' };
const connecting: Partial<DrbdPeer> = { connection: 'Connecting', role: 'Unknown', diskState: 'DUnknown', replication: 'Off' };
const down: Partial<DrbdResource> = { up: false, role: undefined, diskState: undefined, peers: [] };

interface SideSpec {
  resource?: Partial<DrbdResource>;
  peer?: Partial<DrbdPeer>;
  domain?: 'running' | 'shut off' | 'none';
}

/** A VM of the pair (first, second) after a power loss: defined on both, shut off, both Secondary, Connected and UpToDate unless said otherwise. */
function vmAfterPowerLoss(name: string, [first, second]: [string, string], specs: { [node: string]: SideSpec } = {}, minor = 10): Record<string, Partial<NodeFacts>> {
  const parts: Record<string, Partial<NodeFacts>> = {};
  for (const node of [first, second]) {
    const other = node === first ? second : first;
    const spec = specs[node] ?? {};
    const state = spec.domain ?? 'shut off';
    parts[node] = {
      domains: state === 'none' ? [] : [domain(name, state, { minor })],
      drbdResources: [resource(name, node, [first, second], minor, { peers: [peer(other, spec.peer)], ...spec.resource })],
      lvs: [lv(name)],
    };
  }
  return parts;
}

function decide(parts: Record<string, Partial<NodeFacts>>, opts: { unreachable?: string[]; drbdUpDone?: boolean } = {}): StartDecision {
  const all: NodeProbe[] = probes(NODES, parts).map((p) => (opts.unreachable?.includes(p.node)
    ? { node: p.node, ok: false, error: { code: 'PMC_E_NODE_UNREACHABLE', message: `${p.node}: connection timed out` } }
    : p));
  const state = buildCluster(CONFIG, all);
  assert.equal(state.vms.length, 1);
  return decideStart(state.vms[0]!, opts.drbdUpDone ?? true);
}

function startsOn(d: StartDecision): string {
  assert.equal(d.kind, 'start', JSON.stringify(d));
  const start = d as Extract<StartDecision, { kind: 'start' }>;
  assert.ok(start.steps.every((s) => s.node === start.node), 'every step on the one chosen node');
  return start.node;
}

test('both UpToDate and Connected, both Secondary: starts on the first node of the resource, Primary first', () => {
  const d = decide(vmAfterPowerLoss('web', ['pm-2', 'pm-1']));
  assert.equal(startsOn(d), 'pm-2');
  assert.deepEqual((d as Extract<StartDecision, { kind: 'start' }>).steps.map((s) => [s.command, s.undo?.command]), [
    ['drbdadm primary web', 'drbdadm secondary web'],
    ['virsh -c qemu:///system start --domain web', undefined],
  ]);
  assert.equal((d as { degraded: boolean }).degraded, false);
  assert.match((d as { reason: string }).reason, /both disks UpToDate and Connected; pm-2 is its first node/);
});

test('already Primary on one side: starts there without another drbdadm primary', () => {
  const d = decide(vmAfterPowerLoss('web', ['pm-1', 'pm-2'], { 'pm-2': { resource: { role: 'Primary' } }, 'pm-1': { peer: { role: 'Primary' } } }));
  assert.equal(startsOn(d), 'pm-2');
  assert.deepEqual((d as Extract<StartDecision, { kind: 'start' }>).steps.map((s) => s.command), ['virsh -c qemu:///system start --domain web']);
});

test('the first node lacks the definition: the other, which has it, is chosen', () => {
  assert.equal(startsOn(decide(vmAfterPowerLoss('web', ['pm-1', 'pm-2'], { 'pm-1': { domain: 'none' } }))), 'pm-2');
});

test('running VMs and ignored VMs are skipped and say so', () => {
  const running = decide(pairedVm('web', 'pm-1', 'pm-2', 10));
  assert.deepEqual([running.kind, (running as { reason: string }).reason], ['skip', 'already running on pm-1']);
  const ignored = decide(vmAfterPowerLoss('ignore-me', ['pm-1', 'pm-2']));
  assert.deepEqual([ignored.kind, (ignored as { reason: string }).reason], ['skip', 'ignored (its name has the ignore prefix)']);
});

test('the UpToDate side wins over an Outdated or resyncing (Inconsistent) peer', () => {
  const resyncing = decide(vmAfterPowerLoss('web', ['pm-1', 'pm-2'], {
    'pm-1': { resource: { diskState: 'Inconsistent' }, peer: { replication: 'SyncTarget' } },
    'pm-2': { peer: { diskState: 'Inconsistent', replication: 'SyncSource' } },
  }));
  assert.equal(startsOn(resyncing), 'pm-2');
  assert.equal((resyncing as { degraded: boolean }).degraded, false, 'the peer is connected and resyncing');

  const outdated = decide(vmAfterPowerLoss('web', ['pm-1', 'pm-2'], {
    'pm-1': { resource: { diskState: 'UpToDate' }, peer: standalone },
    'pm-2': { resource: { diskState: 'Outdated' }, peer: standalone },
  }));
  assert.equal(startsOn(outdated), 'pm-1');
  assert.equal((outdated as { degraded: boolean }).degraded, true);
  assert.match((outdated as { reason: string }).reason, /pm-1 has the UpToDate disk; pm-2 is Secondary Outdated, StandAlone/);
});

test('split brain is refused with the fix: kernel-log evidence, or both StandAlone and UpToDate', () => {
  const logged = decide(vmAfterPowerLoss('web', ['pm-1', 'pm-2'], {
    'pm-1': { resource: { splitBrain: true }, peer: standalone },
    'pm-2': { peer: connecting },
  }));
  assert.equal(logged.kind, 'refuse');
  assert.match((logged as { reason: string }).reason, /^split brain: the data on pm-1 and pm-2 diverged/);
  assert.match((logged as { fix: string }).fix, /drbdadm secondary web && drbdadm connect --discard-my-data web; on the kept node: drbdadm connect web; then pmc cluster start --only web/);

  const bothStandAlone = decide(vmAfterPowerLoss('web', ['pm-1', 'pm-2'], { 'pm-1': { peer: standalone }, 'pm-2': { peer: standalone } }));
  assert.equal(bothStandAlone.kind, 'refuse');
  assert.match((bothStandAlone as { reason: string }).reason, /^split brain/);

  // events2 on an 8.4 kernel may list no connection at all for a StandAlone resource.
  const noConnection = decide(vmAfterPowerLoss('web', ['pm-1', 'pm-2'], { 'pm-1': { resource: { peers: [] } }, 'pm-2': { resource: { peers: [] } } }));
  assert.match((noConnection as { reason: string }).reason, /^split brain/);
});

test('both UpToDate but unable to connect (one StandAlone) is refused: pmc does not guess', () => {
  const d = decide(vmAfterPowerLoss('web', ['pm-1', 'pm-2'], { 'pm-1': { peer: standalone }, 'pm-2': { peer: connecting } }));
  assert.equal(d.kind, 'refuse');
  assert.match((d as { reason: string }).reason, /both pm-1 and pm-2 claim UpToDate data but are not connected \(StandAlone\/Connecting\)/);
});

test('still connecting after drbd-up is pending (the command waits), not a guess', () => {
  const d = decide(vmAfterPowerLoss('web', ['pm-1', 'pm-2'], { 'pm-1': { peer: connecting }, 'pm-2': { peer: connecting } }));
  assert.deepEqual([d.kind, (d as { reason: string }).reason], ['pending', 'pm-1 and pm-2 are not connected yet (Connecting/Connecting)']);
});

test('peer node down, local disk UpToDate (the last primary): starts degraded there', () => {
  const d = decide(vmAfterPowerLoss('web', ['pm-1', 'pm-2'], { 'pm-2': { peer: connecting } }), { unreachable: ['pm-1'] });
  assert.equal(startsOn(d), 'pm-2');
  assert.equal((d as { degraded: boolean }).degraded, true);
  assert.match((d as { reason: string }).reason, /pm-2 has the UpToDate disk; pm-1 could not be asked/);
  const plan = describeStart({ title: '', steps: [], notes: [] }, [d]);
  assert.match(plan.notes[0]!, /^web starts degraded on pm-2 .* stop one of them at once$/);
});

test('peer node unreachable but still Connected over DRBD (just lost, or only the manager lost it): pending, never started', () => {
  const d = decide(vmAfterPowerLoss('web', ['pm-1', 'pm-2'], { 'pm-2': { peer: { role: 'Primary' } } }), { unreachable: ['pm-1'] });
  assert.equal(d.kind, 'pending');
  assert.match((d as { reason: string }).reason, /^pm-2 still sees pm-1 connected over DRBD \(as Primary\), though pmc cannot ask pm-1: it may be up and running web$/);
  assert.match((d as { fix: string }).fix, /^find out whether pm-1 runs web; if it is down, DRBD on pm-2 notices within seconds; then pmc cluster start --only web$/);
});

test('peer node down and the local disk not UpToDate: refused, bring the peer back', () => {
  const d = decide(vmAfterPowerLoss('web', ['pm-1', 'pm-2'], { 'pm-2': { resource: { diskState: 'Outdated' }, peer: connecting } }), { unreachable: ['pm-1'] });
  assert.equal(d.kind, 'refuse');
  assert.match((d as { reason: string }).reason, /no node has UpToDate data \(pm-1 could not be asked; pm-2 is Secondary Outdated, Connecting\)/);
  assert.match((d as { fix: string }).fix, /bring pm-1 back with DRBD up \(pmc pm drbd-up pm-1\)/);
});

test('a resource still down: pending before drbd-up; after it, the other side counts as unknown', () => {
  const parts = vmAfterPowerLoss('web', ['pm-1', 'pm-2'], { 'pm-1': { resource: down }, 'pm-2': { peer: connecting } });
  const before = decide(parts, { drbdUpDone: false });
  assert.equal(before.kind, 'pending');
  assert.match((before as { reason: string }).reason, /DRBD is down on pm-1: decided once drbd-up has brought it up/);
  const after = decide(parts, { drbdUpDone: true });
  assert.equal(startsOn(after), 'pm-2');
  assert.equal((after as { degraded: boolean }).degraded, true);
});

test('the other side Primary without running the VM while this side has the current data: refused', () => {
  const d = decide(vmAfterPowerLoss('web', ['pm-1', 'pm-2'], {
    'pm-1': { resource: { role: 'Primary', diskState: 'Outdated' }, peer: standalone },
    'pm-2': { peer: connecting },
  }));
  assert.equal(d.kind, 'refuse');
  assert.match((d as { fix: string }).fix, /^on pm-1: drbdadm secondary web/);
});

test('current data on a node without the definition: refused with how to define it', () => {
  const d = decide(vmAfterPowerLoss('web', ['pm-1', 'pm-2'], { 'pm-1': { domain: 'none', peer: connecting } }), { unreachable: ['pm-2'] });
  assert.equal(d.kind, 'refuse');
  assert.match((d as { reason: string }).reason, /current data is on pm-1, but web is not defined there/);
});

test('a DRBD resource without a domain anywhere (half made or half removed) is refused', () => {
  const d = decide(vmAfterPowerLoss('web', ['pm-1', 'pm-2'], { 'pm-1': { domain: 'none' }, 'pm-2': { domain: 'none' } }));
  assert.equal(d.kind, 'refuse');
  assert.match((d as { reason: string }).reason, /^no node defines the domain web/);
  assert.match((d as { fix: string }).fix, /pmc vm rm web/);
});

test('a VM without DRBD starts on the one node that defines it', () => {
  const d = decide({ 'pm-3': { domains: [domain('local', 'shut off', { disks: [] })] } });
  assert.equal(startsOn(d), 'pm-3');
  assert.deepEqual((d as Extract<StartDecision, { kind: 'start' }>).steps.map((s) => s.command), ['virsh -c qemu:///system start --domain local']);
});

test('the whole cluster: one decision per VM, never two nodes for one VM; --only picks VMs and rejects unknown names', () => {
  const state = buildCluster(CONFIG, probes(NODES,
    vmAfterPowerLoss('a', ['pm-1', 'pm-2'], {}, 10),
    vmAfterPowerLoss('b', ['pm-2', 'pm-3'], {}, 11),
    pairedVm('c', 'pm-3', 'pm-1', 12),
  ));
  const decisions = planClusterStart(state, [], true);
  assert.deepEqual(decisions.map((d) => [d.vm, d.kind, d.kind === 'start' ? d.node : undefined]), [
    ['a', 'start', 'pm-1'], ['b', 'start', 'pm-2'], ['c', 'skip', undefined],
  ]);
  assert.deepEqual(planClusterStart(state, ['b'], true).map((d) => d.vm), ['b']);
  assert.throws(() => planClusterStart(state, ['nope'], true), { code: 'PMC_E_VM_UNKNOWN' });

  const plan = describeStart({ title: 'bring up', steps: [{ node: 'pm-1', command: 'drbdadm up a', why: 'up' }], notes: [] }, decisions);
  assert.deepEqual(plan.steps.map((s) => `${s.node}: ${s.command}`), [
    'pm-1: drbdadm up a',
    'pm-1: drbdadm primary a', 'pm-1: virsh -c qemu:///system start --domain a',
    'pm-2: drbdadm primary b', 'pm-2: virsh -c qemu:///system start --domain b',
  ]);
});

test('the view: one line per VM, the fix under a refusal, degraded starts marked, a failed start with its undo', () => {
  const start = decide(vmAfterPowerLoss('web', ['pm-1', 'pm-2'])) as Extract<StartDecision, { kind: 'start' }>;
  const degraded: StartDecision = { ...start, vm: 'db', node: 'pm-2', degraded: true, reason: 'pm-2 has the UpToDate disk; pm-1 could not be asked' };
  const refused = decide(vmAfterPowerLoss('old', ['pm-1', 'pm-2'], { 'pm-1': { peer: standalone }, 'pm-2': { peer: standalone } }));
  const skipped = decide(pairedVm('up', 'pm-3', 'pm-1', 12));
  const applied = (d: Extract<StartDecision, { kind: 'start' }>) => ({ title: '', status: 'applied' as const, done: [], failed: undefined, interrupted: undefined, undone: [], remaining: [], plan: { title: '', steps: d.steps, notes: [] } });
  const failedStart = {
    ...applied(start),
    status: 'failed' as const,
    failed: { step: start.steps[1]!, index: 1, ok: false, result: undefined, error: 'exit 1: error: Failed to start domain' },
    undone: [{ step: { node: 'pm-1', command: 'drbdadm secondary web', why: 'make pm-1 Secondary for web again' }, index: -1, ok: true, result: undefined, error: undefined }],
  };
  const drbd = { mode: 'applied' as const, plan: { title: '', steps: [], notes: [] }, records: [], resources: [], unreachable: [] };
  const text = clusterStartView({
    mode: 'applied', plan: describeStart(drbd.plan, [start, degraded]), drbd, waitedSeconds: 0,
    vms: [
      { decision: degraded, result: applied(degraded) },
      { decision: refused, result: undefined },
      { decision: skipped, result: undefined },
      { decision: start, result: failedStart },
    ],
  }, { style: plainStyle, headers: true, verbose: false });
  assert.equal(text, [
    'VMs',
    '  db   started degraded on pm-2: pm-2 has the UpToDate disk; pm-1 could not be asked',
    `  old  REFUSED: ${(refused as { reason: string }).reason}`,
    `       fix: ${(refused as { fix: string }).fix}`,
    '  up   skipped: already running on pm-3',
    '  web  FAILED to start on pm-1: start web: exit 1: error: Failed to start domain',
    '       undone: make pm-1 Secondary for web again',
  ].join('\n'));
});
