// Starting and removing a shared-storage VM: it never runs twice (every node must answer, none
// may run it), and vm rm removes its definition everywhere and then its one disk file.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildCluster, type ClusterState } from '../../../src/model/cluster.js';
import type { Plan } from '../../../src/ops/engine/plan.js';
import { planClusterStart } from '../../../src/ops/cluster/start.js';
import { planVmStart } from '../../../src/ops/vm/power.js';
import { planVmRm } from '../../../src/ops/vm/rm.js';
import type { NodeFacts } from '../../../src/probe/types.js';
import { probes, SHARED_CONFIG, SHARED_DIR, sharedMounts, sharedVm } from '../model/factory.js';
import { refuses } from '../refusal.js';

const NODES = ['pm-1', 'pm-2', 'pm-3'];
const GiB = 1024 ** 3;
const FILE = `${SHARED_DIR}/web.img`;
const MOUNTED = sharedMounts(NODES, [{ name: 'web.img', sizeBytes: 10 * GiB }]);
const UNDEFINE = 'virsh undefine --nvram --managed-save --snapshots-metadata';

function cluster(parts: Record<string, Partial<NodeFacts>>, down?: string): ClusterState {
  return buildCluster(SHARED_CONFIG, probes(NODES, MOUNTED, parts).map((p) => (p.node === down
    ? { node: down, ok: false, error: { code: 'PMC_E_NODE_UNREACHABLE', message: `${down}: connection timed out` } }
    : p)));
}

const commands = (plan: Plan) => plan.steps.map((s) => `[${s.node}] ${s.command}`);


describe('vm start of a shared VM', () => {
  test('starts on its home (the first node in pmc.yaml that defines it) or on -p; no DRBD step', () => {
    const state = cluster(sharedVm('web', ['pm-2', 'pm-3', 'pm-1'], []));
    assert.deepEqual(commands(planVmStart(state, 'web', SHARED_CONFIG)), ['[pm-1] virsh start uuid-of-web']);
    assert.deepEqual(commands(planVmStart(state, 'web', SHARED_CONFIG, { node: 'pm-3' })), ['[pm-3] virsh start uuid-of-web']);
  });

  test('never twice: refused while it runs anywhere, and while any node (even one that does not define it) is silent', () => {
    refuses('PMC_E_STATE', /web already runs on pm-3: a shared-storage VM never runs twice/,
      () => planVmStart(cluster(sharedVm('web', NODES, ['pm-3'])), 'web', SHARED_CONFIG, { node: 'pm-1' }));
    refuses('PMC_E_NODE_UNREACHABLE', /pm-3 could not be asked whether it runs it there/,
      () => planVmStart(cluster(sharedVm('web', ['pm-1', 'pm-2'], []), 'pm-3'), 'web', SHARED_CONFIG));
  });

  test('a node that does not define it cannot start it', () => {
    refuses('PMC_E_STATE', /web is not defined on pm-3/, () => planVmStart(cluster(sharedVm('web', ['pm-1', 'pm-2'], [])), 'web', SHARED_CONFIG, { node: 'pm-3' }));
  });
});

describe('vm rm of a shared VM', () => {
  test('powers it off where it runs, undefines it on every node, then removes its file once', () => {
    const plan = planVmRm(cluster(sharedVm('web', NODES, ['pm-2'])), 'web', SHARED_CONFIG);
    assert.deepEqual(commands(plan), [
      '[pm-2] virsh destroy uuid-of-web',
      `[pm-1] ${UNDEFINE} uuid-of-web`,
      `[pm-2] ${UNDEFINE} uuid-of-web`,
      `[pm-3] ${UNDEFINE} uuid-of-web`,
      `[pm-2] rm -f -- ${FILE}`,
    ]);
    assert.match(plan.steps.at(-1)!.why, /remove the disk file \/var\/lib\/pmc-shared\/web\.img \(10 GiB\) from the shared file system/);
  });

  test('with a node silent the file stays (that node may run the VM from it), and the notes say so', () => {
    const plan = planVmRm(cluster(sharedVm('web', NODES, []), 'pm-3'), 'web', SHARED_CONFIG);
    assert.deepEqual(commands(plan), [`[pm-1] ${UNDEFINE} uuid-of-web`, `[pm-2] ${UNDEFINE} uuid-of-web`]);
    assert.ok(plan.notes.some((n) => n.startsWith(`${FILE} stays: pm-3 could not be asked and may run web from it`)), plan.notes.join('\n'));
  });

  test('refused when another domain uses its file', () => {
    const other = sharedVm('web', NODES, []);
    other['pm-1']!.domains!.push({ ...other['pm-1']!.domains![0]!, name: 'web-old', uuid: 'uuid-of-web-old' });
    refuses('PMC_E_STATE', /pm-1: the domain web-old uses \/var\/lib\/pmc-shared\/web\.img, which belongs to web/, () => planVmRm(cluster(other), 'web', SHARED_CONFIG));
  });
});

describe('cluster start with a shared VM', () => {
  test('after a power loss it starts where it is defined first, once every node answered; with a node silent it is refused', () => {
    const [decision] = planClusterStart(cluster(sharedVm('web', NODES, [])), [], true);
    assert.equal(decision?.kind, 'start');
    assert.equal(decision?.kind === 'start' && decision.node, 'pm-1');
    const [silent] = planClusterStart(cluster(sharedVm('web', ['pm-1', 'pm-2'], []), 'pm-3'), [], true);
    assert.equal(silent?.kind, 'refuse');
    assert.match(silent!.reason, /pm-3 could not be asked whether it runs it there/);
    assert.equal(planClusterStart(cluster(sharedVm('web', NODES, ['pm-2'])), [], true)[0]?.kind, 'skip');
  });
});
