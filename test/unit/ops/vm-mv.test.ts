// The live-migration planner (pmc vm mv) and the cleanup planner (pmc vm mv --cleanup) on
// cluster states built from probe facts, with the domain definition parsed from a real
// `virsh dumpxml --inactive` (test/fixtures/real): the commands, their order, every refusal.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildCluster, type ClusterState, type NodeProbe } from '../../../src/model/cluster.js';
import { planVmCleanup } from '../../../src/ops/vm/migrate-cleanup.js';
import { migrationAsPlan, planVmMigrate, type MigrateFacts } from '../../../src/ops/vm/migrate-plan.js';
import type { Domain, NodeFacts } from '../../../src/probe/types.js';
import { PmcError } from '../../../src/util/errors.js';
import { CONFIG, domain, lv, peer, probes } from '../model/factory.js';
import { realDomain, running, UUID, withResource, XML } from './mv-helpers.js';
import { refuses } from '../refusal.js';

const NODES = ['pm-1', 'pm-2', 'pm-3'];
const MiB = 1024 ** 2;
const FACTS: MigrateFacts = {
  'pm-1': { bridges: { br0: true }, files: {} },
  'pm-2': { bridges: { br0: true }, files: {} },
};
const OPTS = { timeoutSeconds: 600, facts: FACTS };

function cluster(parts: Record<string, Partial<NodeFacts>>, nodes = NODES): ClusterState {
  return buildCluster({ ...CONFIG, nodes: nodes.map((name) => ({ name })) }, probes(nodes, parts));
}


describe('vm mv: the plan', () => {
  test('Ganeti\'s order: two primaries allowed at run time, target promoted, virsh migrate, read back, source demoted, two primaries off', () => {
    const m = planVmMigrate(cluster(running()), 'test-vm', CONFIG, OPTS);
    assert.equal(m.source, 'pm-1');
    assert.equal(m.target, 'pm-2');
    assert.equal(m.uuid, UUID);
    const lines = migrationAsPlan(m).steps.map((s) => `[${s.node}] ${s.command.split('\n')[0]}`);
    assert.deepEqual(lines.slice(0, 3), [
      '[pm-1] drbdadm net-options --allow-two-primaries=yes test-vm',
      '[pm-2] drbdadm net-options --allow-two-primaries=yes test-vm',
      '[pm-2] drbdadm primary test-vm',
    ]);
    assert.equal(m.migrate.node, 'pm-1');
    assert.match(m.migrate.command, new RegExp(`virsh migrate --live --persistent --verbose ${UUID} qemu\\+ssh://pm-2/system`));
    assert.match(m.migrate.command, new RegExp(`virsh domjobinfo ${UUID}`), 'progress is polled');
    assert.match(m.migrate.command, new RegExp(`virsh domjobabort ${UUID}`), 'the timeout aborts the job');
    assert.match(m.migrate.command, /\+ 600 \)\)/);
    assert.doesNotMatch(m.migrate.command, /undefinesource/, 'the source keeps its definition');
    assert.deepEqual(m.verify.steps.map((s) => s.node), ['pm-2', 'pm-1']);
    assert.match(m.verify.steps[0]!.command, /virsh domstate d2fd4e59-\S+\) && case "\$state" in running\)/);
    assert.match(m.verify.steps[1]!.command, /case "\$state" in 'shut off'\)/);
    assert.deepEqual(m.finish.steps.map((s) => `[${s.node}] ${s.command}`), [
      '[pm-1] drbdadm secondary test-vm',
      '[pm-1] drbdadm net-options --allow-two-primaries=no test-vm',
      '[pm-2] drbdadm net-options --allow-two-primaries=no test-vm',
    ]);
    assert.ok(!migrationAsPlan(m).steps.some((s) => /\.res|drbdadm adjust/.test(s.command)), 'the resource file is never edited');
  });

  test('back from pm-2 to pm-1 just the same', () => {
    const m = planVmMigrate(cluster(running('pm-2', 'pm-1')), 'test-vm', CONFIG, OPTS);
    assert.deepEqual([m.source, m.target], ['pm-2', 'pm-1']);
    assert.match(m.migrate.command, /qemu\+ssh:\/\/pm-1\/system/);
  });

  test('an old-tool resource (allow-two-primaries in its file) migrates; the plan says the file is left alone', () => {
    const parts = withResource(withResource(running(), 'pm-1', { allowTwoPrimaries: true, allowTwoPrimariesLive: true }), 'pm-2', { allowTwoPrimaries: true, allowTwoPrimariesLive: true });
    const m = planVmMigrate(cluster(parts), 'test-vm', CONFIG, OPTS);
    assert.ok(m.notes.some((n) => /leaves the file alone and turns it off at run time/.test(n)));
    assert.match(m.finish.steps.at(-1)!.command, /--allow-two-primaries=no/);
  });

  test('memory already promised to earlier VMs of the same run counts', () => {
    const parts = running();
    parts['pm-2']!.memory = { totalBytes: 2048 * MiB, availableBytes: 100 * MiB };
    planVmMigrate(cluster(parts), 'test-vm', CONFIG, OPTS);
    refuses('PMC_E_STATE', /pm-2 has 100 MiB of memory available now, 128 MiB needed \(with the VMs migrated there before it\)/,
      () => planVmMigrate(cluster(parts), 'test-vm', CONFIG, { ...OPTS, incomingBytes: 64 * MiB }));
  });
});

describe('vm mv: refusals, before anything changes', () => {
  const plan = (parts: Record<string, Partial<NodeFacts>>, opts = OPTS) => () => planVmMigrate(cluster(parts), 'test-vm', CONFIG, opts);

  test('not running, or running on both', () => {
    const stopped = running();
    stopped['pm-1']!.domains = [realDomain('shut off')];
    refuses('PMC_E_STATE', /test-vm cannot migrate: it is not running \(shut off\); nothing was changed/, plan(stopped));
    const twice = running();
    twice['pm-2']!.domains = [realDomain('running')];
    refuses('PMC_E_STATE', /it runs on pm-1 and pm-2 at once/, plan(twice));
  });

  test('a node of the VM could not be asked, or is not in pmc.yaml', () => {
    const all: NodeProbe[] = probes(NODES, running()).map((p) => (p.node === 'pm-2'
      ? { node: 'pm-2', ok: false, error: { code: 'PMC_E_NODE_UNREACHABLE', message: 'pm-2: connection timed out' } } : p));
    refuses('PMC_E_STATE', /pm-2 could not be asked/, () => planVmMigrate(buildCluster(CONFIG, all), 'test-vm', CONFIG, OPTS));
    refuses('PMC_E_STATE', /its node pm-2 is not in pmc\.yaml/,
      () => planVmMigrate(buildCluster({ ...CONFIG, nodes: [{ name: 'pm-1' }, { name: 'pm-3' }] }, probes(['pm-1', 'pm-3'], running())), 'test-vm', CONFIG, OPTS));
  });

  test('not Connected and UpToDate/UpToDate on both sides: never promote first and check after', () => {
    const syncing = withResource(running(), 'pm-2', { diskState: 'Inconsistent', peers: [peer('pm-1', { role: 'Primary', replication: 'SyncTarget', syncPercent: 40 })] });
    refuses('PMC_E_STATE', /test-vm on pm-2 is Connected with disks Inconsistent\/UpToDate; a migration needs Connected and UpToDate\/UpToDate/, plan(syncing));
    const cut = withResource(running(), 'pm-1', { peers: [peer('pm-2', { connection: 'Connecting', diskState: 'DUnknown', role: 'Unknown' })] });
    refuses('PMC_E_STATE', /test-vm on pm-1 is Connecting with disks UpToDate\/DUnknown/, plan(cut));
    const down = withResource(running(), 'pm-2', { up: false, role: undefined, diskState: undefined, peers: [] });
    refuses('PMC_E_STATE', /its DRBD resource test-vm is down on pm-2/, plan(down));
    const split = withResource(running(), 'pm-2', { splitBrain: true });
    refuses('PMC_E_STATE', /split brain/, plan(split));
  });

  test('the target is Primary already (an interrupted migration): --cleanup first', () => {
    const parts = withResource(running(), 'pm-2', { role: 'Primary' });
    refuses('PMC_E_STATE', /test-vm is already Primary on pm-2: an earlier migration was interrupted/, plan(parts));
  });

  test('a one-node VM has no peer to go to', () => {
    const parts: Record<string, Partial<NodeFacts>> = { 'pm-1': { domains: [realDomain('running')], lvs: [lv('test-vm')] } };
    refuses('PMC_E_STATE', /it has no DRBD resource on pm-1/, plan(parts));
  });

  test('the peer must define it with the same UUID', () => {
    const missing = running();
    missing['pm-2']!.domains = [];
    refuses('PMC_E_STATE', /it is not defined on pm-2/, plan(missing));
    const other = running();
    other['pm-2']!.domains = [{ ...realDomain('shut off'), uuid: '11111111-2222-3333-4444-555555555555' }];
    refuses('PMC_E_STATE', /its UUID is d2fd4e59-\S+ on pm-1 but 11111111-\S+ on pm-2: two different domains/, plan(other));
  });

  test('different disks, NICs or CPU model are named', () => {
    const disk = running();
    disk['pm-2']!.domains = [realDomain('shut off', XML.replace("<source dev='/dev/drbd10'/>", "<source dev='/dev/drbd11'/>"))];
    refuses('PMC_E_STATE', /disk vda is disk block \/dev\/drbd10 bus virtio on pm-1 but disk block \/dev\/drbd11 bus virtio on pm-2/, plan(disk));
    const nic = running();
    nic['pm-2']!.domains = [realDomain('shut off', XML.replace("<source bridge='br0'/>", "<source bridge='br1'/>"))];
    refuses('PMC_E_STATE', /NIC 52:54:00:ff:00:0a is bridge br0 model virtio on pm-1 but bridge br1 model virtio on pm-2/, plan(nic));
    const extra = running();
    extra['pm-2']!.domains = [realDomain('shut off', XML.replace("<mac address='52:54:00:ff:00:0a'/>", "<mac address='52:54:00:ff:00:0b'/>"))];
    refuses('PMC_E_STATE', /NIC 52:54:00:ff:00:0a \(bridge br0 model virtio\) only on pm-1; NIC 52:54:00:ff:00:0b \(bridge br0 model virtio\) only on pm-2/, plan(extra));
    const cpu = running();
    cpu['pm-2']!.domains = [realDomain('shut off', XML.replace('>qemu64<', '>Haswell<'))];
    refuses('PMC_E_STATE', /CPU custom qemu64 on pm-1, custom Haswell on pm-2/, plan(cpu));
  });

  test('the target\'s memory: available now, and enough for every VM defined for it', () => {
    const small = running();
    small['pm-2']!.memory = { totalBytes: 2048 * MiB, availableBytes: 32 * MiB };
    refuses('PMC_E_STATE', /pm-2 has 32 MiB of memory available now, 64 MiB needed/, plan(small));
    const crowded = running();
    crowded['pm-2']!.domains!.push(domain('big', 'shut off', { minor: 11, memoryBytes: 1600 * MiB }));
    refuses('PMC_E_STATE', /pm-2 has 2 GiB of memory, less 512 MiB for itself, and the VMs defined for it need 1\.6\d* GiB/, plan(crowded));
  });

  test('the bridge and the attached ISO images must be on the target, the ISO identical', () => {
    refuses('PMC_E_STATE', /pm-2 has no bridge br0 for its NIC 52:54:00:ff:00:0a/,
      plan(running(), { ...OPTS, facts: { ...FACTS, 'pm-2': { bridges: { br0: false }, files: {} } } }));
    const iso = '/var/lib/libvirt/images/pmc-iso/debian.iso';
    const cdrom = XML.replace('</devices>', `<disk type='file' device='cdrom'><source file='${iso}'/><target dev='hdc' bus='ide'/><readonly/></disk></devices>`);
    const withCd = running();
    withCd['pm-1']!.domains = [realDomain('running', cdrom)];
    withCd['pm-2']!.domains = [realDomain('shut off', cdrom)];
    const files = (pm2: string | null): MigrateFacts => ({ 'pm-1': { bridges: { br0: true }, files: { [iso]: 'aa' } }, 'pm-2': { bridges: { br0: true }, files: { [iso]: pm2 } } });
    refuses('PMC_E_STATE', /pm-2 has no \/var\/lib\/libvirt\/images\/pmc-iso\/debian\.iso, which is attached to it/, plan(withCd, { ...OPTS, facts: files(null) }));
    refuses('PMC_E_STATE', /debian\.iso differs between pm-1 and pm-2 \(sha256\)/, plan(withCd, { ...OPTS, facts: files('bb') }));
    planVmMigrate(cluster(withCd), 'test-vm', CONFIG, { ...OPTS, facts: files('aa') });
  });

  test('ignored VMs, unknown VMs and a bad --timeout', () => {
    const ignoring = { ...CONFIG, ignorePrefix: 'test-' };
    refuses('PMC_E_VM_IGNORED', /starts with the ignore prefix/, () => planVmMigrate(buildCluster(ignoring, probes(NODES, running())), 'test-vm', ignoring, OPTS));
    assert.throws(() => planVmMigrate(cluster(running()), 'nope', CONFIG, OPTS), (e: unknown) => e instanceof PmcError && e.code === 'PMC_E_VM_UNKNOWN');
    refuses('PMC_E_USAGE', /--timeout must be a whole number of seconds above 0 \(got 0\)/, plan(running(), { ...OPTS, timeoutSeconds: 0 }));
  });
});

describe('vm mv --cleanup', () => {
  const commands = (state: ClusterState) => planVmCleanup(state, 'test-vm', CONFIG).steps.map((s) => `[${s.node}] ${s.command}`);

  /** After `virsh migrate` completed but pmc was gone: runs on pm-2, both Primary, two primaries allowed. */
  function interrupted(targetState: Domain['state'] = 'running', reason?: string): Record<string, Partial<NodeFacts>> {
    const parts = running();
    parts['pm-1']!.domains = [realDomain('shut off', XML, 'migrated')];
    parts['pm-2']!.domains = [realDomain(targetState, XML, reason)];
    withResource(parts, 'pm-1', { allowTwoPrimariesLive: true, peers: [peer('pm-2', { role: 'Primary' })] });
    return withResource(parts, 'pm-2', { role: 'Primary', allowTwoPrimariesLive: true, peers: [peer('pm-1', { role: 'Primary' })] });
  }

  test('migration done, roles not: the source is demoted, two primaries off on both', () => {
    assert.deepEqual(commands(cluster(interrupted())), [
      '[pm-1] drbdadm secondary test-vm',
      '[pm-1] drbdadm net-options --allow-two-primaries=no test-vm',
      '[pm-2] drbdadm net-options --allow-two-primaries=no test-vm',
    ]);
  });

  test('a domain the migration left paused is resumed where it should run, first', () => {
    assert.deepEqual(commands(cluster(interrupted('paused', 'migration'))).slice(0, 2), [
      `[pm-2] virsh resume ${UUID}`,
      '[pm-1] drbdadm secondary test-vm',
    ]);
    const byUser = planVmCleanup(cluster(interrupted('paused', 'user')), 'test-vm', CONFIG);
    assert.ok(!byUser.steps.some((s) => s.command.includes('resume')), 'an operator\'s pause is kept');
    assert.ok(byUser.notes.some((n) => /paused by an operator on pm-2: left paused/.test(n)));
  });

  test('aborted before the handover: it still runs on the source, the promoted target is demoted', () => {
    const parts = running();
    withResource(parts, 'pm-1', { allowTwoPrimariesLive: true });
    withResource(parts, 'pm-2', { role: 'Primary', allowTwoPrimariesLive: true });
    assert.deepEqual(commands(cluster(parts)), [
      '[pm-2] drbdadm secondary test-vm',
      '[pm-1] drbdadm net-options --allow-two-primaries=no test-vm',
      '[pm-2] drbdadm net-options --allow-two-primaries=no test-vm',
    ]);
  });

  test('idempotent: a clean VM plans nothing and says so', () => {
    const plan = planVmCleanup(cluster(running()), 'test-vm', CONFIG);
    assert.deepEqual(plan.steps, []);
    assert.match(plan.notes.join('\n'), /nothing to clean up: test-vm runs on pm-1, the only Primary/);
  });

  test('running on both, or on none with both Primary: refused with what the operator must decide', () => {
    const both = interrupted();
    both['pm-1']!.domains = [realDomain('running')];
    refuses('PMC_E_STATE', /test-vm: it is running \(booted\) on pm-1 and running \(booted\) on pm-2: pmc cannot tell which copy to keep; nothing was changed/, () => planVmCleanup(cluster(both), 'test-vm', CONFIG));
    const byUser = interrupted('paused', 'user');
    byUser['pm-1']!.domains = [realDomain('running')];
    assert.throws(() => planVmCleanup(cluster(byUser), 'test-vm', CONFIG), (e: unknown) => e instanceof PmcError && /running \(booted\) on pm-1 and paused \(user\) on pm-2/.test(e.message));
    const none = interrupted('shut off');
    refuses('PMC_E_STATE', /it runs nowhere and test-vm is Primary on both pm-1 and pm-2/, () => planVmCleanup(cluster(none), 'test-vm', CONFIG));
  });

  test('the link broke mid-migration (split brain on reconnect): the side that does not run it drops its data', () => {
    const parts = running();
    withResource(parts, 'pm-1', { splitBrain: true, allowTwoPrimariesLive: true, peers: [peer('pm-2', { connection: 'StandAlone', diskState: 'DUnknown', role: 'Unknown' })] });
    withResource(parts, 'pm-2', { role: 'Primary', allowTwoPrimariesLive: true, peers: [peer('pm-1', { connection: 'Connecting', diskState: 'DUnknown', role: 'Unknown' })] });
    assert.deepEqual(commands(cluster(parts)), [
      '[pm-2] drbdadm secondary test-vm',
      '[pm-2] drbdadm disconnect test-vm',
      '[pm-2] drbdadm connect --discard-my-data test-vm',
      '[pm-1] drbdadm connect test-vm',
      '[pm-1] drbdadm net-options --allow-two-primaries=no test-vm',
      '[pm-2] drbdadm net-options --allow-two-primaries=no test-vm',
    ]);
    const nowhere = running();
    nowhere['pm-1']!.domains = [realDomain('shut off')];
    withResource(nowhere, 'pm-1', { splitBrain: true });
    refuses('PMC_E_STATE', /in split brain and the VM runs nowhere/, () => planVmCleanup(cluster(nowhere), 'test-vm', CONFIG));
  });

  test('a copy left paused by a cut-off migration next to the running one is powered off, guarded on the node by its job and state', () => {
    const parts = interrupted('paused', 'migration');
    parts['pm-1']!.domains = [realDomain('running')];
    withResource(parts, 'pm-1', { role: 'Primary' });
    const plan = planVmCleanup(cluster(parts), 'test-vm', CONFIG);
    assert.equal(plan.title, 'clean up test-vm: it runs on pm-1');
    assert.equal(plan.steps[0]!.node, 'pm-2');
    assert.match(plan.steps[0]!.command, new RegExp(`^virsh domjobinfo ${UUID} \\| grep -q '\\^Job type: \\*None' && .*virsh domstate ${UUID}.* = paused \\] && virsh destroy ${UUID} \\|\\|`));
    assert.deepEqual(plan.steps.slice(1).map((s) => `[${s.node}] ${s.command}`), [
      '[pm-2] drbdadm secondary test-vm',
      '[pm-1] drbdadm net-options --allow-two-primaries=no test-vm',
      '[pm-2] drbdadm net-options --allow-two-primaries=no test-vm',
    ]);
  });

  test('a node that cannot be asked: where it runs is unknown', () => {
    const all: NodeProbe[] = probes(NODES, interrupted()).map((p) => (p.node === 'pm-1'
      ? { node: 'pm-1', ok: false, error: { code: 'PMC_E_NODE_UNREACHABLE', message: 'pm-1: connection timed out' } } : p));
    refuses('PMC_E_STATE', /pm-1 could not be asked, so where it runs is unknown/, () => planVmCleanup(buildCluster(CONFIG, all), 'test-vm', CONFIG));
  });
});
