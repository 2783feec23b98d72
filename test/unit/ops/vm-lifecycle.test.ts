// The VM lifecycle planners (rm, start, stop, destroy, reboot) on cluster states built from
// probe facts: which commands, on which node, in which order, and what they refuse.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildCluster, type ClusterState, type NodeProbe } from '../../../src/model/cluster.js';
import type { Plan } from '../../../src/ops/engine/plan.js';
import type { Context } from '../../../src/cli/context.js';
import { mutate } from '../../../src/ops/engine/mutate.js';
import { planVmReboot, planVmStart, planVmStop } from '../../../src/ops/vm/power.js';
import { planVmRm } from '../../../src/ops/vm/rm.js';
import type { NodeFacts } from '../../../src/probe/types.js';
import { CONFIG, domain, lv, pairedVm, peer, probes, resource } from '../model/factory.js';
import { refuses } from '../refusal.js';

const NODES = ['pm-1', 'pm-2', 'pm-3'];
const UNDEFINE = 'virsh undefine --nvram --managed-save --snapshots-metadata';

function cluster(...parts: Record<string, Partial<NodeFacts>>[]): ClusterState {
  return buildCluster(CONFIG, probes(NODES, ...parts));
}

function withNodeDown(node: string, ...parts: Record<string, Partial<NodeFacts>>[]): ClusterState {
  const all: NodeProbe[] = probes(NODES, ...parts).map((p) => (p.node === node
    ? { node, ok: false, error: { code: 'PMC_E_NODE_UNREACHABLE', message: `${node}: connection timed out` } }
    : p));
  return buildCluster(CONFIG, all);
}

/** `[node] command` per step, the shape an operator reads in --dry-run. */
function commands(plan: Plan): string[] {
  return plan.steps.map((s) => `[${s.node}] ${s.command}`);
}


/** Both sides Secondary, UpToDate, connected, shut off: the state after `pmc vm stop`. */
function stoppedVm(name: string, first: string, second: string, minor: number): Record<string, Partial<NodeFacts>> {
  const parts = pairedVm(name, first, second, minor);
  parts[first]!.domains = [domain(name, 'shut off', { minor })];
  parts[first]!.drbdResources = [resource(name, first, [first, second], minor)];
  parts[second]!.drbdResources = [resource(name, second, [first, second], minor)];
  return parts;
}

describe('vm rm', () => {
  test('removes exactly the VM\'s own domain, resource, LV and file on both nodes, phase by phase', () => {
    const state = cluster(pairedVm('web', 'pm-1', 'pm-2', 10), pairedVm('web-2', 'pm-1', 'pm-2', 11));
    const plan = planVmRm(state, 'web', CONFIG);
    assert.deepEqual(commands(plan), [
      '[pm-1] virsh destroy uuid-of-web',
      `[pm-1] ${UNDEFINE} uuid-of-web`,
      `[pm-2] ${UNDEFINE} uuid-of-web`,
      '[pm-1] drbdadm down web',
      '[pm-2] drbdadm down web',
      '[pm-1] lvremove -y /dev/vg-pmc/web',
      '[pm-2] lvremove -y /dev/vg-pmc/web',
      '[pm-1] rm -f -- /etc/drbd.d/web.res',
      '[pm-2] rm -f -- /etc/drbd.d/web.res',
    ]);
    assert.equal(plan.title, 'remove web from pm-1, pm-2');
    assert.ok(plan.notes.some((n) => /runs on pm-1: it is powered off first/.test(n)));
    assert.ok(plan.steps.every((s) => !s.command.includes('web-2')), 'nothing of web-2');
  });

  test('a shut-off VM is not destroyed; paths come from the live resource, not the naming scheme', () => {
    const parts = stoppedVm('db', 'pm-2', 'pm-3', 12);
    for (const node of ['pm-2', 'pm-3']) {
      const res = parts[node]!.drbdResources![0]!;
      parts[node]!.drbdResources = [{ ...res, disk: '/dev/vg-pmc/db-disk', configFile: '/etc/drbd.d/legacy-db.res' }];
      parts[node]!.lvs = [{ ...lv('db-disk'), open: false }];
    }
    const plan = planVmRm(cluster(parts), 'db', CONFIG);
    assert.ok(!plan.steps.some((s) => s.command.startsWith('virsh destroy')));
    assert.deepEqual(commands(plan).slice(4), [
      '[pm-2] lvremove -y /dev/vg-pmc/db-disk',
      '[pm-3] lvremove -y /dev/vg-pmc/db-disk',
      '[pm-2] rm -f -- /etc/drbd.d/legacy-db.res',
      '[pm-3] rm -f -- /etc/drbd.d/legacy-db.res',
    ]);
    assert.deepEqual(plan.notes, []);
  });

  test('every value is quoted for the shell', () => {
    const name = "it's web";
    const parts = pairedVm(name, 'pm-1', 'pm-2', 10);
    const plan = planVmRm(cluster(parts), name, CONFIG);
    assert.ok(commands(plan).includes(`[pm-1] virsh destroy 'uuid-of-it'\\''s web'`));
    assert.ok(commands(plan).includes(`[pm-2] drbdadm down 'it'\\''s web'`));
    assert.ok(commands(plan).includes(`[pm-2] lvremove -y '/dev/vg-pmc/it'\\''s web'`));
    assert.ok(commands(plan).includes(`[pm-2] rm -f -- '/etc/drbd.d/it'\\''s web.res'`));
  });

  test('a node that is down keeps its part, and the notes say exactly what', () => {
    const state = withNodeDown('pm-2', pairedVm('web', 'pm-1', 'pm-2', 10));
    const plan = planVmRm(state, 'web', CONFIG);
    assert.ok(plan.steps.every((s) => s.node === 'pm-1'));
    assert.equal(plan.steps.length, 5);
    const note = plan.notes.find((n) => n.startsWith('pm-2'));
    assert.match(note!, /the domain web \(if defined there\), the DRBD resource web \(\/dev\/drbd10\), the LV \/dev\/vg-pmc\/web and \/etc\/drbd\.d\/web\.res stay there/);
    assert.match(note!, /pmc vm rm -f web" again/);
    assert.match(note!, /pmc cluster verify/);
    assert.ok(plan.notes.every((n) => !n.startsWith('pm-3')), 'pm-3 answered');
  });

  test('with a node down the dry run (and the run) is partial, and the warning says why', async () => {
    const state = withNodeDown('pm-2', pairedVm('web', 'pm-1', 'pm-2', 10));
    const ctx = { log: () => undefined } as unknown as Context;
    const report = await mutate(ctx, {
      lock: [], dryRun: true, read: async () => state, plan: (s) => planVmRm(s, 'web', CONFIG), mattering: (s) => s.nodes.map((n) => n.name),
    });
    assert.equal(report.status, 'partial');
    assert.deepEqual(report.warnings, ['pm-2: connection timed out']);
    assert.equal(report.data.status, 'dry-run');
  });

  test('a down node outside the VM\'s pair is mentioned too', () => {
    const plan = planVmRm(withNodeDown('pm-3', pairedVm('web', 'pm-1', 'pm-2', 10)), 'web', CONFIG);
    assert.ok(plan.notes.some((n) => /^pm-3 could not be asked: anything of web there stays/.test(n)));
  });

  test('a resource that is down needs no drbdadm down; one the kernel runs without a file is taken down by drbdsetup', () => {
    const parts = stoppedVm('web', 'pm-1', 'pm-2', 10);
    parts['pm-1']!.drbdResources = [resource('web', 'pm-1', ['pm-1', 'pm-2'], 10, { up: false, role: undefined, diskState: undefined, peers: [] })];
    parts['pm-2']!.drbdResources = [resource('web', 'pm-2', ['pm-1', 'pm-2'], 10, { configured: false, configFile: undefined })];
    const plan = planVmRm(cluster(parts), 'web', CONFIG);
    const drbd = commands(plan).filter((c) => c.includes('drbd') && !c.includes('rm -f'));
    assert.deepEqual(drbd, ['[pm-2] drbdsetup down web']);
    assert.deepEqual(commands(plan).filter((c) => c.includes('rm -f')), ['[pm-1] rm -f -- /etc/drbd.d/web.res']);
  });

  test('refuses, changing nothing, when another VM uses its disk or resource file', () => {
    const shared = pairedVm('web', 'pm-1', 'pm-2', 10);
    shared['pm-2']!.domains = [...shared['pm-2']!.domains!, domain('intruder', 'shut off', { minor: 10 })];
    refuses('PMC_E_STATE', /pm-2: the domain intruder uses \/dev\/drbd10, which belongs to web/, () => planVmRm(cluster(shared), 'web', CONFIG));

    const oneFile = pairedVm('web', 'pm-1', 'pm-2', 10);
    oneFile['pm-1']!.drbdResources = [...oneFile['pm-1']!.drbdResources!,
      resource('db', 'pm-1', ['pm-1', 'pm-2'], 11, { configFile: '/etc/drbd.d/web.res' })];
    refuses('PMC_E_STATE', /\/etc\/drbd\.d\/web\.res defines db as well as web/, () => planVmRm(cluster(oneFile), 'web', CONFIG));
  });

  test('a VM pmc does not know is an error', () => {
    refuses('PMC_E_VM_UNKNOWN', /no VM named "nope"/, () => planVmRm(cluster(pairedVm('web', 'pm-1', 'pm-2', 10)), 'nope', CONFIG));
  });
});

describe('vm start', () => {
  test('both Secondary and UpToDate: promotes and starts on the preferred node (the first "on" host)', () => {
    const plan = planVmStart(cluster(stoppedVm('web', 'pm-2', 'pm-1', 10)), 'web', CONFIG);
    assert.equal(plan.title, 'start web on pm-2');
    assert.deepEqual(commands(plan), ['[pm-2] drbdadm primary web', '[pm-2] virsh start uuid-of-web']);
    assert.equal(plan.steps[0]!.undo!.command, 'drbdadm secondary web');
  });

  test('-p chooses the node', () => {
    const plan = planVmStart(cluster(stoppedVm('web', 'pm-2', 'pm-1', 10)), 'web', CONFIG, { node: 'pm-1' });
    assert.deepEqual(commands(plan), ['[pm-1] drbdadm primary web', '[pm-1] virsh start uuid-of-web']);
  });

  test('starts where DRBD is already Primary, without promoting', () => {
    const parts = stoppedVm('web', 'pm-1', 'pm-2', 10);
    parts['pm-2']!.drbdResources = [resource('web', 'pm-2', ['pm-1', 'pm-2'], 10, { role: 'Primary', peers: [peer('pm-1')] })];
    assert.deepEqual(commands(planVmStart(cluster(parts), 'web', CONFIG)), ['[pm-2] virsh start uuid-of-web']);
  });

  test('refuses when it runs anywhere', () => {
    refuses('PMC_E_STATE', /web is already running on pm-1/, () => planVmStart(cluster(pairedVm('web', 'pm-1', 'pm-2', 10)), 'web', CONFIG, { node: 'pm-2' }));
    const paused = pairedVm('web', 'pm-1', 'pm-2', 10);
    paused['pm-1']!.domains = [domain('web', 'paused')];
    refuses('PMC_E_STATE', /already paused on pm-1/, () => planVmStart(cluster(paused), 'web', CONFIG));
  });

  test('refuses a disk that is not UpToDate', () => {
    const parts = stoppedVm('web', 'pm-1', 'pm-2', 10);
    parts['pm-1']!.drbdResources = [resource('web', 'pm-1', ['pm-1', 'pm-2'], 10, {
      diskState: 'Inconsistent', peers: [peer('pm-2', { replication: 'SyncTarget', syncPercent: 40 })],
    })];
    refuses('PMC_E_STATE', /disk of web on pm-1 is Inconsistent, not UpToDate/, () => planVmStart(cluster(parts), 'web', CONFIG));
    parts['pm-1']!.drbdResources = [resource('web', 'pm-1', ['pm-1', 'pm-2'], 10, { diskState: 'Outdated' })];
    refuses('PMC_E_STATE', /is Outdated/, () => planVmStart(cluster(parts), 'web', CONFIG));
  });

  test('refuses split brain, which looks almost healthy', () => {
    const parts = stoppedVm('web', 'pm-1', 'pm-2', 10);
    const standalone = { connection: 'StandAlone', role: 'Unknown', diskState: 'DUnknown', replication: 'Off' } as const;
    parts['pm-1']!.drbdResources = [resource('web', 'pm-1', ['pm-1', 'pm-2'], 10, { peers: [peer('pm-2', standalone)] })];
    parts['pm-2']!.drbdResources = [resource('web', 'pm-2', ['pm-1', 'pm-2'], 10, { peers: [peer('pm-1', standalone)] })];
    refuses('PMC_E_STATE', /split brain/, () => planVmStart(cluster(parts), 'web', CONFIG));
  });

  test('refuses a side that is not connected to its peer, a resource that is down, a node that cannot be asked', () => {
    const waiting = stoppedVm('web', 'pm-1', 'pm-2', 10);
    waiting['pm-1']!.drbdResources = [resource('web', 'pm-1', ['pm-1', 'pm-2'], 10, {
      peers: [peer('pm-2', { connection: 'Connecting', role: 'Unknown', diskState: 'DUnknown', replication: 'Off' })],
    })];
    waiting['pm-2']!.drbdResources = [resource('web', 'pm-2', ['pm-1', 'pm-2'], 10, { up: false, role: undefined, diskState: undefined, peers: [] })];
    refuses('PMC_E_STATE', /web on pm-1 is Connecting, not connected to pm-2/, () => planVmStart(cluster(waiting), 'web', CONFIG));
    refuses('PMC_E_STATE', /DRBD resource web is down on pm-2/, () => planVmStart(cluster(waiting), 'web', CONFIG, { node: 'pm-2' }));
    refuses('PMC_E_STATE', /pm-2 could not be asked: web may be running there/,
      () => planVmStart(withNodeDown('pm-2', stoppedVm('web', 'pm-1', 'pm-2', 10)), 'web', CONFIG));
  });

  test('refuses a node the VM is not defined on', () => {
    refuses('PMC_E_STATE', /web is not defined on pm-3/, () => planVmStart(cluster(stoppedVm('web', 'pm-1', 'pm-2', 10)), 'web', CONFIG, { node: 'pm-3' }));
  });

  test('an old-tool VM left Primary on both sides: demotes the other side, then starts on the preferred node', () => {
    const parts = stoppedVm('old', 'pm-1', 'pm-2', 500);
    for (const [self, other] of [['pm-1', 'pm-2'], ['pm-2', 'pm-1']] as const) {
      parts[self]!.drbdResources = [resource('old', self, ['pm-1', 'pm-2'], 500, {
        role: 'Primary', allowTwoPrimaries: true, allowTwoPrimariesLive: true, peers: [peer(other, { role: 'Primary' })],
      })];
    }
    const plan = planVmStart(cluster(parts), 'old', CONFIG);
    assert.deepEqual(commands(plan), ['[pm-2] drbdadm secondary old', '[pm-1] virsh start uuid-of-old']);
    assert.equal(plan.steps[0]!.undo!.command, 'drbdadm primary old');
  });
});

describe('vm stop, destroy, reboot', () => {
  test('stop: a guest shutdown waited for on the node, then DRBD demoted', () => {
    const plan = planVmStop(cluster(pairedVm('web', 'pm-1', 'pm-2', 10)), 'web', CONFIG, { timeoutSeconds: 120, force: false });
    assert.equal(plan.steps.length, 2);
    const [shutdown, demote] = plan.steps;
    assert.equal(shutdown!.node, 'pm-1');
    assert.match(shutdown!.command, /^virsh shutdown uuid-of-web >\/dev\/null && end=\$\(\( \$\(date \+%s\) \+ 120 \)\)/);
    assert.match(shutdown!.command, /virsh domstate uuid-of-web/);
    assert.equal(shutdown!.timeoutMs, 180_000);
    assert.deepEqual(`[${demote!.node}] ${demote!.command}`, '[pm-1] drbdadm secondary web');
  });

  test('stop --force and destroy power off, then demote', () => {
    const plan = planVmStop(cluster(pairedVm('web', 'pm-1', 'pm-2', 10)), 'web', CONFIG, { timeoutSeconds: 120, force: true });
    assert.deepEqual(commands(plan), ['[pm-1] virsh destroy uuid-of-web', '[pm-1] drbdadm secondary web']);
    assert.equal(plan.title, 'power off web');
  });

  test('stop of a VM that is off and Secondary does nothing and says so', () => {
    const plan = planVmStop(cluster(stoppedVm('web', 'pm-1', 'pm-2', 10)), 'web', CONFIG, { timeoutSeconds: 120, force: false });
    assert.deepEqual(plan.steps, []);
    assert.deepEqual(plan.notes, ['web is already shut off and Secondary on every node that answered']);
  });

  test('stop of an old-tool VM off but Primary on both sides demotes both', () => {
    const parts = stoppedVm('old', 'pm-1', 'pm-2', 500);
    for (const [self, other] of [['pm-1', 'pm-2'], ['pm-2', 'pm-1']] as const) {
      parts[self]!.drbdResources = [resource('old', self, ['pm-1', 'pm-2'], 500, { role: 'Primary', allowTwoPrimaries: true, peers: [peer(other, { role: 'Primary' })] })];
    }
    const plan = planVmStop(cluster(parts), 'old', CONFIG, { timeoutSeconds: 120, force: false });
    assert.deepEqual(commands(plan), ['[pm-1] drbdadm secondary old', '[pm-2] drbdadm secondary old']);
  });

  test('stop with a node down stops what it can see and says what it could not', () => {
    const plan = planVmStop(withNodeDown('pm-2', pairedVm('web', 'pm-1', 'pm-2', 10)), 'web', CONFIG, { timeoutSeconds: 60, force: false });
    assert.ok(plan.steps.every((s) => s.node === 'pm-1'));
    assert.deepEqual(plan.notes, ['pm-2 could not be asked: if web runs there, it goes on running']);
  });

  test('stop refuses a timeout that is not a positive whole number', () => {
    refuses('PMC_E_USAGE', /--timeout/, () => planVmStop(cluster(pairedVm('web', 'pm-1', 'pm-2', 10)), 'web', CONFIG, { timeoutSeconds: 0, force: false }));
  });

  test('reboot runs virsh reboot where the VM runs; refuses when it does not run', () => {
    const asked = planVmReboot(cluster(pairedVm('web', 'pm-2', 'pm-1', 10)), 'web', CONFIG);
    assert.deepEqual(commands(asked), ['[pm-2] virsh reboot uuid-of-web']);
    // A request is not a reboot: the plan says the guest decides, and how to force it.
    assert.equal(asked.title, 'ask web to reboot on pm-2');
    assert.match(asked.notes.join('\n'), /the guest decides .* pmc vm reboot --hard web resets it/);
    assert.deepEqual(commands(planVmReboot(cluster(pairedVm('web', 'pm-2', 'pm-1', 10)), 'web', CONFIG, true)), ['[pm-2] virsh reset uuid-of-web']);
    refuses('PMC_E_STATE', /web is not running/, () => planVmReboot(cluster(stoppedVm('web', 'pm-1', 'pm-2', 10)), 'web', CONFIG));
  });
});

test('a VM with the ignore prefix is refused by every mutating command', () => {
  const state = cluster(pairedVm('ignore-lab', 'pm-1', 'pm-2', 10));
  const planners: Array<[string, () => unknown]> = [
    ['rm', () => planVmRm(state, 'ignore-lab', CONFIG)],
    ['start', () => planVmStart(state, 'ignore-lab', CONFIG)],
    ['stop', () => planVmStop(state, 'ignore-lab', CONFIG, { timeoutSeconds: 120, force: false })],
    ['destroy', () => planVmStop(state, 'ignore-lab', CONFIG, { timeoutSeconds: 120, force: true })],
    ['reboot', () => planVmReboot(state, 'ignore-lab', CONFIG)],
  ];
  for (const [command, plan] of planners) refuses('PMC_E_VM_IGNORED', /ignore-lab starts with the ignore prefix "ignore"/, plan, command);
});

test('a resource named "all" is never handed to drbdadm', () => {
  refuses('PMC_E_STATE', /"all"/, () => planVmRm(cluster(pairedVm('all', 'pm-1', 'pm-2', 10)), 'all', CONFIG));
});
