// The evacuation planner (pmc pm evacuate) on cluster states built from probe facts, the VM
// that runs on the node being emptied described by the real `virsh dumpxml --inactive`: what
// moves where and in which order, the copies planned on the state the migrations leave, the
// placement of the copies, and every refusal, all before anything changes.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ClusterState } from '../../../src/model/cluster.js';
import { dependencies } from '../../../src/ops/engine/plan.js';
import { parseEvacuateArgs, type EvacuateRequest } from '../../../src/ops/pm/evacuate-args.js';
import { checkEvacuation, planEvacuation, type EvacuateReport, type EvacuationItem } from '../../../src/ops/pm/evacuate.js';
import type { MigrateFacts } from '../../../src/ops/vm/migrate-plan.js';
import type { NodeFacts } from '../../../src/probe/types.js';
import { evacuateView } from '../../../src/render/views/evacuate.js';
import { plainStyle } from '../../../src/render/style.js';
import { PmcError } from '../../../src/util/errors.js';
import { ADDRESSES, domain, lv, pairedVm, peer, resource } from '../model/factory.js';
import { running, withResource } from './mv-helpers.js';
import { cluster, config, GiB, withNodeDown } from './vm-add-helpers.js';
import { refuses } from '../refusal.js';

const CFG = config();
const FACTS: MigrateFacts = {
  'pm-1': { bridges: { br0: true }, files: {} },
  'pm-2': { bridges: { br0: true }, files: {} },
};
const REQ: Pick<EvacuateRequest, 'node' | 'secondaries' | 'to' | 'timeoutSeconds'> = { node: 'pm-1', secondaries: false, to: undefined, timeoutSeconds: 600 };

/** test-vm runs on pm-1; db is shut off with pm-1 its Primary; web runs on pm-2 with its standby copy on pm-1; other lives on pm-2/pm-3. */
function busy(): Record<string, Partial<NodeFacts>>[] {
  const db = pairedVm('db', 'pm-1', 'pm-2', 11);
  db['pm-1']!.domains = [domain('db', 'shut off', { minor: 11 })];
  return [running(), db, pairedVm('web', 'pm-2', 'pm-1', 12), pairedVm('other', 'pm-2', 'pm-3', 13)];
}

function plan(state: ClusterState, req: Partial<typeof REQ> = {}): EvacuationItem[] {
  const check = checkEvacuation(state, CFG, { ...REQ, ...req }, FACTS);
  const addresses = Object.fromEntries(check.copies.map((t) => [t.vm, { [t.primary]: ADDRESSES[t.primary]!, [t.newPeer]: ADDRESSES[t.newPeer]! }]));
  const items = planEvacuation(check, CFG, addresses);
  for (const item of items) dependencies(item.plan);
  return items;
}

const commands = (item: EvacuationItem) => item.plan.steps.map((s) => `[${s.node}] ${s.command.split('\n')[0]!.split(' && ')[0]}`);


describe('pm evacuate: the plan', () => {
  test('without --secondaries: the running VM migrates to its peer, the shut-off one is demoted, standby copies stay and the notes say so', () => {
    const check = checkEvacuation(cluster(CFG, ...busy()), CFG, REQ, FACTS);
    const items = planEvacuation(check, CFG, {});
    assert.deepEqual(items.map((i) => `${i.action} ${i.vm} ${i.from} -> ${i.to}`), ['migrate test-vm pm-1 -> pm-2', 'demote db pm-1 -> pm-2']);
    const [migrate, demote] = items as [EvacuationItem, EvacuationItem];
    assert.ok(migrate.migration, 'the migration keeps its phases for vm mv\'s executor');
    assert.ok(commands(migrate).includes('[pm-2] drbdadm primary test-vm'));
    assert.match(migrate.plan.steps.find((s) => s.command.includes('virsh migrate'))!.command, /qemu\+ssh:\/\/pm-2\/system/);
    assert.deepEqual(commands(migrate).slice(-3), [
      '[pm-1] drbdadm secondary test-vm',
      '[pm-1] drbdadm net-options --allow-two-primaries=no test-vm',
      '[pm-2] drbdadm net-options --allow-two-primaries=no test-vm',
    ]);
    assert.deepEqual(commands(demote), ['[pm-1] drbdadm secondary db']);
    assert.match(check.notes.join('\n'), /pm-1 keeps the standby copies of db, web, test-vm: while it is off, they run without a mirror; --secondaries moves them/);
    assert.ok(items.every((i) => i.plan.steps.every((s) => !s.command.includes('other'))), 'a VM pm-1 holds nothing of is not touched');
  });

  test('--secondaries --to pm-3: after the migration and the demotion every copy on pm-1 moves to pm-3, resynced from pm-2, and only then pm-1\'s copy goes', () => {
    const items = plan(cluster(CFG, ...busy()), { secondaries: true, to: 'pm-3' });
    assert.deepEqual(items.map((i) => `${i.action} ${i.vm} ${i.from} -> ${i.to}`), [
      'migrate test-vm pm-1 -> pm-2', 'demote db pm-1 -> pm-2', 'move copy db pm-1 -> pm-3', 'move copy test-vm pm-1 -> pm-3', 'move copy web pm-1 -> pm-3',
    ]);
    for (const item of items.filter((i) => i.action === 'move copy')) {
      const vm = item.vm;
      const lines = commands(item);
      assert.deepEqual(lines.slice(0, 2).map((l) => l.split(' && ')[0]), ['[pm-3] f=$(mktemp)', `[pm-3] lvcreate -q -y -W y -Z y -L 1073741824b -n ${vm} -- vg-pmc`]);
      assert.ok(lines.includes(`[pm-2] drbdadm adjust ${vm}`), 'the kept copy, on pm-2, is pointed at pm-3');
      const resync = item.plan.steps.findIndex((s) => s.command.startsWith('stalled=0'));
      assert.equal(item.plan.steps[resync]!.node, 'pm-2');
      assert.deepEqual(lines.slice(resync + 1).filter((l) => l.startsWith('[pm-1]')), [
        `[pm-1] virsh undefine --nvram ${vm === 'test-vm' ? 'd2fd4e59-ee6a-4d1e-aee0-f5ae227a41ab' : `uuid-of-${vm}`}`,
        `[pm-1] drbdadm down ${vm}`,
        `[pm-1] lvremove -q -y -- vg-pmc/${vm}`,
        `[pm-1] rm -f /etc/drbd.d/${vm}.res`,
      ]);
      assert.ok(item.plan.steps.slice(0, resync).every((s) => s.node !== 'pm-1'), 'nothing on pm-1 changes before the new copy is UpToDate');
      const file = (item.plan.steps.find((s) => s.node === 'pm-2' && s.input && 'text' in s.input)!.input as { text: string }).text;
      assert.match(file, /on pm-2 \{\n {4}address 10\.99\.0\.12:\d+;[\s\S]*on pm-3 \{\n {4}address 10\.99\.0\.13:\d+;/);
      assert.doesNotMatch(file, /pm-1/);
    }
    const notes = (vm: string) => items.find((i) => i.action === 'move copy' && i.vm === vm)!.plan.notes.join('\n');
    assert.match(notes('test-vm'), /test-vm keeps running on pm-2/, 'planned on the state after its migration');
    assert.match(notes('db'), /db has its only current copy on pm-2/, 'a shut-off VM keeps the copy on pm-2');
  });

  test('without --to each copy is placed as vm add places VMs, counting the copies placed before it, never on pm-1 or the VM\'s other node', () => {
    const cfg = config('', ['pm-1', 'pm-2', 'pm-3', 'pm-4']);
    const parts = busy();
    // pm-2, the kept side, has by far the most memory; pm-4 has more free memory than pm-3 but room for one copy only.
    parts.push({ 'pm-2': { memory: { totalBytes: 64 * GiB, availableBytes: 60 * GiB } }, 'pm-4': { vg: { name: 'vg-pmc', sizeBytes: 8 * GiB, freeBytes: 1.5 * GiB, extentSizeBytes: 4 * 1024 ** 2 } } });
    const check = checkEvacuation(cluster(cfg, ...parts), cfg, { ...REQ, secondaries: true }, FACTS);
    assert.deepEqual(check.copies.map((t) => `${t.vm} ${t.primary} -> ${t.newPeer}`), ['db pm-2 -> pm-4', 'test-vm pm-2 -> pm-3', 'web pm-2 -> pm-3']);
    assert.match(check.notes.join('\n'), /db's copy placed on pm-4 \(1\.5 GiB memory, 1\.5 GiB disk free\): the most free memory, then disk/);
    assert.match(check.notes.join('\n'), /test-vm's copy placed on pm-3 /);
  });

  test('ignored VMs are left as they are, and said so', () => {
    const ignored = pairedVm('ignore-me', 'pm-1', 'pm-2', 14);
    const check = checkEvacuation(cluster(CFG, ...busy(), ignored), CFG, { ...REQ, secondaries: true, to: 'pm-3' }, FACTS);
    assert.deepEqual(check.skipped, ['ignore-me']);
    assert.ok(![...check.migrations.map((m) => m.vm), ...check.copies.map((t) => t.vm)].includes('ignore-me'));
    assert.match(check.notes.join('\n'), /ignore-me: ignored \(the ignore prefix\); whatever pm-1 holds of it stays there/);
  });

  test('nothing to do: a node that runs nothing and is Primary for nothing plans nothing, and says what it keeps', () => {
    const state = cluster(CFG, ...busy());
    const check = checkEvacuation(state, CFG, { ...REQ, node: 'pm-3' }, FACTS);
    assert.deepEqual(planEvacuation(check, CFG, {}), []);
    assert.match(check.notes.join('\n'), /pm-3 keeps the standby copy of other/);
    assert.deepEqual(planEvacuation(checkEvacuation(cluster(CFG, running()), CFG, { ...REQ, node: 'pm-3', secondaries: true }, FACTS), CFG, {}), []);
  });
});

describe('pm evacuate: refusals, before anything changes', () => {
  test('PM not in pmc.yaml, or not answering', () => {
    refuses('PMC_E_NODE_UNKNOWN', /node "pm-9" is not in/, () => checkEvacuation(cluster(CFG, ...busy()), CFG, { ...REQ, node: 'pm-9' }, FACTS));
    refuses('PMC_E_NODE_UNKNOWN', /node "pm-9" is not in/, () => checkEvacuation(cluster(CFG, ...busy()), CFG, { ...REQ, secondaries: true, to: 'pm-9' }, FACTS));
    assert.throws(() => checkEvacuation(withNodeDown(CFG, 'pm-1', ...busy()), CFG, REQ, FACTS), (err: unknown) => err instanceof PmcError
      && err.code === 'PMC_E_NODE_UNREACHABLE' && /pm-1 could not be asked, so what runs there is unknown; nothing was changed/.test(err.message)
      && /pmc pm failover pm-1/.test(err.hint ?? ''));
  });

  test('a VM whose other copy is not UpToDate: every such VM is named in one refusal', () => {
    const parts = busy();
    withResource(parts[0]!, 'pm-2', { diskState: 'Inconsistent', peers: [peer('pm-1', { role: 'Primary', replication: 'SyncTarget', syncPercent: 40 })] });
    parts[1]!['pm-2']!.drbdResources = [resource('db', 'pm-2', ['pm-1', 'pm-2'], 11, { diskState: 'Outdated', peers: [peer('pm-1', { connection: 'Connecting', diskState: 'DUnknown', role: 'Unknown' })] })];
    refuses('PMC_E_STATE', new RegExp([
      'pm-1 cannot be evacuated; nothing was changed:',
      'db: its copy on pm-2 is Outdated and Connecting to pm-1: with pm-1 off it would have no copy known to be current \\(fix: .*\\)',
      'test-vm: cannot migrate: test-vm on pm-2 is Connected with disks Inconsistent/UpToDate; a migration needs Connected and UpToDate/UpToDate on both nodes \\(fix: wait for the resync to finish .*\\)$',
    ].join('\n')), () => checkEvacuation(cluster(CFG, ...parts), CFG, REQ, FACTS));
  });

  test('a one-node VM on PM blocks it, running or not, with how to proceed', () => {
    const solo = { 'pm-1': { domains: [domain('solo', 'shut off')], lvs: [lv('solo')] } };
    for (const parts of [solo, { 'pm-1': { ...solo['pm-1'], domains: [domain('solo', 'running')] } }]) {
      assert.throws(() => checkEvacuation(cluster(CFG, ...busy(), parts), CFG, REQ, FACTS), (err: unknown) => err instanceof PmcError
        && /\nsolo: it has no DRBD peer: its only copy is on pm-1.*\(fix: copy it off first \(pmc vm backup -b solo, then pmc vm restore solo --at latest --to NEW-NAME/.test(err.message));
    }
  });

  test('--to equal to PM, and --to without --secondaries: usage errors, in the planner and on the command line', () => {
    const state = cluster(CFG, ...busy());
    refuses('PMC_E_USAGE', /--to pm-1 is the node being evacuated/, () => checkEvacuation(state, CFG, { ...REQ, secondaries: true, to: 'pm-1' }, FACTS));
    refuses('PMC_E_USAGE', /--to names where the standby copies go, and only --secondaries moves them/, () => checkEvacuation(state, CFG, { ...REQ, to: 'pm-3' }, FACTS));
    const args = { node: 'pm-1', secondaries: true, to: undefined, parallel: '1', timeout: '600', dryRun: false };
    refuses('PMC_E_USAGE', /--to pm-1 is the node being evacuated/, () => parseEvacuateArgs({ ...args, to: 'pm-1' }));
    refuses('PMC_E_USAGE', /only --secondaries moves them/, () => parseEvacuateArgs({ ...args, secondaries: false, to: 'pm-3' }));
    refuses('PMC_E_USAGE', /--parallel "0": must be a whole number from 1 to 64/, () => parseEvacuateArgs({ ...args, parallel: '0' }));
    refuses('PMC_E_USAGE', /--timeout "1e99"/, () => parseEvacuateArgs({ ...args, timeout: '1e99' }));
    assert.deepEqual(parseEvacuateArgs({ ...args, parallel: '2', to: 'pm-3' }), { node: 'pm-1', secondaries: true, to: 'pm-3', parallel: 2, timeoutSeconds: 600, dryRun: false } satisfies EvacuateRequest);
  });

  test('the copies: no node can take one, --to has no room or cannot be asked', () => {
    const full = { 'pm-3': { vg: { name: 'vg-pmc', sizeBytes: 8 * GiB, freeBytes: 0, extentSizeBytes: 4 * 1024 ** 2 } } };
    refuses('PMC_E_STATE', /\ndb: no node can take its copy from pm-1: pm-3's volume group vg-pmc has 0 B free, 1 GiB needed/,
      () => checkEvacuation(cluster(CFG, ...busy(), full), CFG, { ...REQ, secondaries: true }, FACTS));
    refuses('PMC_E_STATE', /\ndb: pm-3 has 0 B free in vg-pmc, db needs 1 GiB/,
      () => checkEvacuation(cluster(CFG, ...busy(), full), CFG, { ...REQ, secondaries: true, to: 'pm-3' }, FACTS));
    refuses('PMC_E_STATE', /\nweb: pm-3 could not be asked, so the copy cannot be made there/,
      () => checkEvacuation(withNodeDown(CFG, 'pm-3', ...busy()), CFG, { ...REQ, secondaries: true, to: 'pm-3' }, FACTS));
    refuses('PMC_E_STATE', /\nweb: pm-2 runs web already: the new copy must go to another node/,
      () => checkEvacuation(cluster(CFG, ...busy()), CFG, { ...REQ, secondaries: true, to: 'pm-2' }, FACTS));
  });

  test('a shut-off VM that is Primary on both nodes, or runs on its peer while pm-1 is Primary too: --cleanup first', () => {
    const both = busy();
    both[1]!['pm-2']!.drbdResources = [resource('db', 'pm-2', ['pm-1', 'pm-2'], 11, { role: 'Primary', peers: [peer('pm-1', { role: 'Primary' })] })];
    refuses('PMC_E_STATE', /\ndb: it runs nowhere and is DRBD Primary on pm-1 and pm-2 \(fix: pmc vm mv --cleanup db/, () => checkEvacuation(cluster(CFG, ...both), CFG, REQ, FACTS));
    const web = busy();
    web[2]!['pm-1']!.drbdResources = [resource('web', 'pm-1', ['pm-2', 'pm-1'], 12, { role: 'Primary', peers: [peer('pm-2', { role: 'Primary' })] })];
    refuses('PMC_E_STATE', /\nweb: it runs on pm-2, yet pm-1 is DRBD Primary for it too \(fix: pmc vm mv --cleanup web\)/, () => checkEvacuation(cluster(CFG, ...web), CFG, REQ, FACTS));
  });
});

describe('pm evacuate: the report', () => {
  test('a failed run says what moved and what did not', () => {
    const items = plan(cluster(CFG, ...busy()), { secondaries: true, to: 'pm-3' });
    const report: EvacuateReport = {
      node: 'pm-1', checksMs: 1200, skipped: [], notes: [],
      outcomes: items.map((i, n) => ({
        vm: i.vm, action: i.action, from: i.from, to: i.to, plan: i.plan, result: undefined,
        status: n < 2 ? 'done' : n === 2 ? 'failed' : 'not started',
        migration: i.migration && {
          vm: i.vm, source: i.from, target: i.to, status: 'migrated', error: undefined, hint: undefined, plan: i.plan,
          done: [], failed: undefined, recovery: undefined, timings: { roleChangesMs: 900, migrateMs: 4100, totalMs: 5000 },
        },
      })),
    };
    const text = evacuateView(report, { style: plainStyle, headers: true, verbose: false });
    assert.match(text, /^test-vm: migrated pm-1 -> pm-2 in 5\.0 s \(virsh migrate 4\.1 s, role changes and checks 0\.9 s, reading the cluster 1\.2 s\)$/m);
    assert.match(text, /^db: demoted on pm-1 \(shut off; pm-2 holds its other copy, UpToDate\)$/m);
    assert.match(text, /^db \(copy pm-1 -> pm-3\): FAILED$/m);
    assert.match(text, /^pm-1 NOT evacuated\n {2}moved: test-vm \(migrate pm-1 -> pm-2\), db \(demote on pm-1\)\n {2}not moved: db \(copy pm-1 -> pm-3\) \(failed\), test-vm \(copy pm-1 -> pm-3\) \(not started\), web \(copy pm-1 -> pm-3\) \(not started\)$/m);
  });

  test('the dry run shows every plan', () => {
    const items = plan(cluster(CFG, ...busy()), { secondaries: true, to: 'pm-3' });
    const text = evacuateView({ node: 'pm-1', checksMs: 0, skipped: [], notes: ['n'], outcomes: items.map((i) => ({ vm: i.vm, action: i.action, from: i.from, to: i.to, plan: i.plan, status: 'dry-run', migration: undefined, result: undefined })) },
      { style: plainStyle, headers: true, verbose: false });
    assert.match(text, /^dry run, nothing changed: evacuate pm-1: 1 migration, 1 demotion, 3 standby copies moved\nnote: n\n\nmigrate test-vm from pm-1 to pm-2/);
    assert.match(text, /^move web's standby copy from pm-1 to pm-3, resynced from pm-2 \(1 GiB\)/m);
    assert.deepEqual(text.match(/\[pm-1\] remove the old copy \(LV \S+\)/g), ['db', 'test-vm', 'web'].map((vm) => `[pm-1] remove the old copy (LV /dev/vg-pmc/${vm})`));
  });
});
