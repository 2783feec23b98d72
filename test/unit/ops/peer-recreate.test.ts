import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dependencies } from '../../../src/ops/engine/plan.js';
import { checkPeerRecreate, planPeerRecreate } from '../../../src/ops/vm/peer-recreate.js';
import { domain, lv, pairedVm, resource } from '../model/factory.js';
import { cluster, config, withNodeDown } from './vm-add-helpers.js';

const CFG = config();
const ADDRESSES = { 'pm-1': '10.99.0.11', 'pm-2': '10.99.0.12', 'pm-3': '10.99.0.13' };
/** The plan's commands, once it is clear the executor can order them (one after the other: each step waits for every step before it). */
function commands(plan: ReturnType<typeof planPeerRecreate>) {
  assert.deepEqual(dependencies(plan), plan.steps.map((_s, i) => [...Array(i).keys()]));
  return plan.steps.map((s) => [s.node, s.command.startsWith('stalled=0') ? 'wait for the resync' : s.command.split(' && ')[0]]);
}

test('peer-recreate onto pm-3: the domain first (libvirt there judges it), new LV + metadata, primary repointed, full resync, then the old copy goes', () => {
  const state = cluster(CFG, pairedVm('web', 'pm-1', 'pm-2', 10));
  const t = checkPeerRecreate(state, CFG, 'web', 'pm-3');
  const plan = planPeerRecreate(state, CFG, t, ADDRESSES);
  assert.deepEqual(commands(plan), [
    ['pm-3', "f=$(mktemp)"],
    ['pm-3', 'lvcreate -q -y -W y -Z y -L 1073741824b -n web -- vg-pmc'],
    ['pm-3', "cat > /etc/drbd.d/web.res.tmp"],
    ['pm-3', 'drbdadm -- --force create-md web'],
    ['pm-3', 'drbdadm up web || { rc=$?; drbdadm down web; exit $rc; }'],
    ['pm-1', 'cp -p /etc/drbd.d/web.res /etc/drbd.d/web.res.pmc-before-peer-recreate'],
    ['pm-1', "cat > /etc/drbd.d/web.res.tmp"],
    ['pm-1', 'drbdadm adjust web'],
    ['pm-1', 'wait for the resync'],
    ['pm-1', 'rm -f /etc/drbd.d/web.res.pmc-before-peer-recreate'],
    ['pm-2', 'virsh undefine --nvram uuid-of-web'],
    ['pm-2', 'drbdadm down web'],
    ['pm-2', 'lvremove -q -y -- vg-pmc/web'],
    ['pm-2', 'rm -f /etc/drbd.d/web.res'],
  ]);
  assert.equal(plan.steps[0]!.undo?.command, 'virsh undefine uuid-of-web');
  const text = plan.steps[2]!.input as { text: string };
  assert.match(text.text, /on pm-1 \{\n    address 10.99.0.11:7788;[\s\S]*on pm-3 \{\n    address 10.99.0.13:7788;/);
  assert.doesNotMatch(text.text, /pm-2/);
  // Before the resync ends, a failure undoes the new side and puts the primary's old file back.
  const beforeUpToDate = plan.steps.slice(0, 8).filter((s) => s.undo).map((s) => [s.node, s.undo!.command]);
  assert.deepEqual(beforeUpToDate.at(-1), ['pm-1', 'mv -f /etc/drbd.d/web.res.pmc-before-peer-recreate /etc/drbd.d/web.res && drbdadm adjust web']);
  assert.ok(plan.steps.slice(8).every((s) => s.node !== 'pm-2' || !s.undo), 'the old copy goes only after the resync');
});

test('peer-recreate without NEWPM rebuilds the copy on the same node, keeping its resource file and domain', () => {
  const state = cluster(CFG, pairedVm('web', 'pm-1', 'pm-2', 10));
  const plan = planPeerRecreate(state, CFG, checkPeerRecreate(state, CFG, 'web', undefined), ADDRESSES);
  assert.deepEqual(commands(plan), [
    ['pm-2', 'drbdadm down web'],
    ['pm-2', 'drbdadm -- --force create-md web'],
    ['pm-2', 'drbdadm up web || { rc=$?; drbdadm down web; exit $rc; }'],
    ['pm-1', 'wait for the resync'],
  ]);
});

test('peer-recreate without NEWPM on a node whose disk was replaced: a new LV, resource file and metadata there', () => {
  const parts = pairedVm('web', 'pm-1', 'pm-2', 10);
  parts['pm-2'] = { domains: parts['pm-2']!.domains! };
  const state = cluster(CFG, parts);
  assert.deepEqual(commands(planPeerRecreate(state, CFG, checkPeerRecreate(state, CFG, 'web', undefined), ADDRESSES)), [
    ['pm-2', 'lvcreate -q -y -W y -Z y -L 1073741824b -n web -- vg-pmc'],
    ['pm-2', 'cat > /etc/drbd.d/web.res.tmp'],
    ['pm-2', 'drbdadm -- --force create-md web'],
    ['pm-2', 'drbdadm up web || { rc=$?; drbdadm down web; exit $rc; }'],
    ['pm-1', 'wait for the resync'],
  ]);
});

test('peer-recreate refusals: no single primary, target has the VM, no space, unreachable target, ignored, runs on the old peer', () => {
  const stopped = pairedVm('web', 'pm-1', 'pm-2', 10);
  stopped['pm-1']!.drbdResources = [resource('web', 'pm-1', ['pm-1', 'pm-2'], 10)];
  stopped['pm-1']!.domains = [domain('web', 'shut off')];
  assert.throws(() => checkPeerRecreate(cluster(CFG, stopped), CFG, 'web', 'pm-3'), /no DRBD Primary/);
  const taken = { 'pm-3': { lvs: [lv('web')] } };
  assert.throws(() => checkPeerRecreate(cluster(CFG, pairedVm('web', 'pm-1', 'pm-2', 10), taken), CFG, 'web', 'pm-3'), /pm-3 has the LV vg-pmc\/web/);
  const full = { 'pm-3': { vg: { name: 'vg-pmc', sizeBytes: 8 * 1024 ** 3, freeBytes: 0, extentSizeBytes: 4 * 1024 ** 2 } } };
  assert.throws(() => checkPeerRecreate(cluster(CFG, pairedVm('web', 'pm-1', 'pm-2', 10), full), CFG, 'web', 'pm-3'), { code: 'PMC_E_CAPACITY' });
  assert.throws(() => checkPeerRecreate(withNodeDown(CFG, 'pm-3', pairedVm('web', 'pm-1', 'pm-2', 10)), CFG, 'web', 'pm-3'), { code: 'PMC_E_NODE_UNREACHABLE' });
  assert.throws(() => checkPeerRecreate(cluster(CFG, pairedVm('web', 'pm-1', 'pm-2', 10)), CFG, 'web', 'pm-1'), /runs web already/);
  assert.throws(() => checkPeerRecreate(cluster(CFG, pairedVm('ignore-web', 'pm-1', 'pm-2', 10)), CFG, 'ignore-web', 'pm-3'), { code: 'PMC_E_VM_IGNORED' });
  assert.throws(() => checkPeerRecreate(cluster(CFG, pairedVm('web', 'pm-1', 'pm-2', 10)), CFG, 'web', 'pm-9'), { code: 'PMC_E_NODE_UNKNOWN' });
});

test('peer-recreate away from a dead secondary: the old copy is left there and the plan says so', () => {
  const state = withNodeDown(CFG, 'pm-2', pairedVm('web', 'pm-1', 'pm-2', 10));
  const plan = planPeerRecreate(state, CFG, checkPeerRecreate(state, CFG, 'web', 'pm-3'), ADDRESSES);
  assert.ok(plan.steps.every((s) => s.node !== 'pm-2'));
  assert.match(plan.notes.join('\n'), /pm-2 cannot be asked: its old copy .* stays there/);
});
