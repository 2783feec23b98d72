// vm mv of a shared-storage VM: to any node (--to, else the one with the most free memory),
// defined there first when it is not, no DRBD step, and checked to run on the target only.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildCluster, type ClusterState } from '../../../src/model/cluster.js';
import { planVmCleanup } from '../../../src/ops/vm/migrate-cleanup.js';
import { migrationAsPlan, planVmMigrate, type MigrateFacts } from '../../../src/ops/vm/migrate-plan.js';
import type { NodeFacts } from '../../../src/probe/types.js';
import { PmcError } from '../../../src/util/errors.js';
import { pairedVm, probes, SHARED_CONFIG, SHARED_DIR, sharedMounts, sharedVm } from '../model/factory.js';
import { refuses } from '../refusal.js';

const NODES = ['pm-1', 'pm-2', 'pm-3'];
const GiB = 1024 ** 3;
const MOUNTED = sharedMounts(NODES, [{ name: 'web.img', sizeBytes: 10 * GiB }]);
const FACTS: MigrateFacts = Object.fromEntries(NODES.map((n) => [n, { bridges: { br0: true }, files: {} }]));
const OPTS = { timeoutSeconds: 600, facts: FACTS };
const memory = { memory: { totalBytes: 8 * GiB, availableBytes: 6 * GiB } };
const BIG = Object.fromEntries(NODES.map((n) => [n, memory]));

function cluster(...parts: Record<string, Partial<NodeFacts>>[]): ClusterState {
  return buildCluster(SHARED_CONFIG, probes(NODES, MOUNTED, BIG, ...parts));
}


const lines = (m: ReturnType<typeof planVmMigrate>) => migrationAsPlan(m).steps.map((s) => `[${s.node}] ${s.command.split('\n')[0]}`);

describe('vm mv: a shared-storage VM', () => {
  test('without --to: to the node with the most free memory; only virsh migrate, then it runs there and nowhere else', () => {
    const m = planVmMigrate(cluster(sharedVm('web', NODES, ['pm-1'], GiB), sharedVm('db', ['pm-2'], ['pm-2'], 2 * GiB)), 'web', SHARED_CONFIG, OPTS);
    assert.deepEqual([m.source, m.target, m.resource], ['pm-1', 'pm-3', undefined]);
    assert.deepEqual(lines(m), [
      '[pm-1] log=$(mktemp) && trap \'rm -f "$log"\' EXIT',
      '[pm-3] state=$(virsh domstate uuid-of-web) && case "$state" in running) ;; *) echo "the domain is $state" >&2; exit 1;; esac',
      `[pm-1] state=$(virsh domstate uuid-of-web) && case "$state" in 'shut off') ;; *) echo "the domain is $state" >&2; exit 1;; esac`,
      `[pm-2] state=$(virsh domstate uuid-of-web) && case "$state" in 'shut off') ;; *) echo "the domain is $state" >&2; exit 1;; esac`,
    ]);
    assert.match(m.migrate.command, /virsh migrate --live --persistent --verbose uuid-of-web qemu\+ssh:\/\/pm-3\/system/);
    assert.ok(!migrationAsPlan(m).steps.some((s) => /drbdadm/.test(s.command)), 'no DRBD');
    assert.match(m.notes.join('\n'), new RegExp(`disk is ${SHARED_DIR}/web\\.img on the shared file system: only its memory moves`));
  });

  test('--to a node that does not define it yet: defined there first from the source\'s definition', () => {
    const m = planVmMigrate(cluster(sharedVm('web', ['pm-1', 'pm-3'], ['pm-1'])), 'web', SHARED_CONFIG, { ...OPTS, to: 'pm-2' });
    assert.equal(m.target, 'pm-2');
    assert.deepEqual(m.prepare.steps.map((s) => [s.node, s.input]), [['pm-2', { fromNode: 'pm-1', command: 'virsh dumpxml --inactive --security-info uuid-of-web' }]]);
    assert.equal(m.prepare.steps[0]!.undo?.command, 'virsh undefine uuid-of-web');
    assert.deepEqual(m.verify.steps.map((s) => s.node), ['pm-2', 'pm-1', 'pm-3']);
  });

  test('refused, before anything changes: already there, not running, running twice, target silent or without its bridge', () => {
    refuses('PMC_E_STATE', /runs on pm-1 already/, () => planVmMigrate(cluster(sharedVm('web', NODES, ['pm-1'])), 'web', SHARED_CONFIG, { ...OPTS, to: 'pm-1' }));
    refuses('PMC_E_STATE', /it is not running/, () => planVmMigrate(cluster(sharedVm('web', NODES, [])), 'web', SHARED_CONFIG, OPTS));
    refuses('PMC_E_STATE', /runs on pm-1 and pm-2 at once/, () => planVmMigrate(cluster(sharedVm('web', NODES, ['pm-1', 'pm-2'])), 'web', SHARED_CONFIG, OPTS));
    const silent = buildCluster(SHARED_CONFIG, probes(NODES, MOUNTED, BIG, sharedVm('web', ['pm-1', 'pm-2'], ['pm-1'])).map((p) => (p.node === 'pm-3'
      ? { node: 'pm-3', ok: false as const, error: { code: 'PMC_E_NODE_UNREACHABLE' as const, message: 'pm-3: connection timed out' } } : p)));
    refuses('PMC_E_STATE', /pm-3 could not be asked/, () => planVmMigrate(silent, 'web', SHARED_CONFIG, { ...OPTS, to: 'pm-3' }));
    refuses('PMC_E_STATE', /pm-3 has no bridge br0/,
      () => planVmMigrate(cluster(sharedVm('web', NODES, ['pm-1'])), 'web', SHARED_CONFIG, { ...OPTS, to: 'pm-3', facts: { ...FACTS, 'pm-3': { bridges: {}, files: {} } } }));
  });

  test('a DRBD VM: --to may only name its peer', () => {
    const state = cluster(pairedVm('app', 'pm-1', 'pm-2', 10));
    assert.equal(planVmMigrate(state, 'app', SHARED_CONFIG, { ...OPTS, to: 'pm-2' }).target, 'pm-2');
    assert.throws(() => planVmMigrate(state, 'app', SHARED_CONFIG, { ...OPTS, to: 'pm-3' }), (err: PmcError) => err.code === 'PMC_E_STATE'
      && /its disk is mirrored to pm-2 only, not to pm-3/.test(err.message) && /pmc vm peer-recreate pm-3 app first moves its standby copy to pm-3/.test(err.hint ?? ''));
  });
});

describe('vm mv --cleanup: a shared-storage VM', () => {
  test('the copy an interrupted migration left paused on the target is powered off, and nothing about DRBD is planned', () => {
    const parts = sharedVm('web', NODES, ['pm-1', 'pm-3']);
    parts['pm-3']!.domains![0] = { ...parts['pm-3']!.domains![0]!, state: 'paused', stateReason: 'migration' };
    const plan = planVmCleanup(cluster(parts), 'web', SHARED_CONFIG);
    assert.equal(plan.title, 'clean up web: it runs on pm-1');
    assert.deepEqual(plan.steps.map((s) => s.node), ['pm-3']);
    assert.match(plan.steps[0]!.command, /virsh destroy uuid-of-web/);
    assert.ok(!plan.steps.some((s) => /drbdadm/.test(s.command)));
    assert.deepEqual(planVmCleanup(cluster(sharedVm('web', NODES, ['pm-2'])), 'web', SHARED_CONFIG).notes, ['nothing to clean up: web runs on pm-2']);
  });
});
