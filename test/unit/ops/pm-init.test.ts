import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configSchema } from '../../../src/config/schema.js';
import { buildCluster, type NodeProbe } from '../../../src/model/cluster.js';
import {
  evaluateInit, fixPlan, markFixed, nodeChecks, sharedMarkerStep, type InitCheck, type InitFacts,
} from '../../../src/ops/pm/init.js';
import { plainStyle } from '../../../src/render/style.js';
import { initView } from '../../../src/render/views/pm-init.js';
import { parseKnownHosts } from '../../../src/ssh/known-hosts.js';
import type { NodeFacts } from '../../../src/probe/types.js';
import type { SshTarget } from '../../../src/ssh/types.js';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { ADDRESSES, nodeFacts, SHARED_DIR, SHARED_ID, sharedFacts } from '../model/factory.js';
import { tempDirFor } from '../../temp-dir.js';
import { fakeKey, keyLine } from './ssh-keys.js';

const GiB = 1024 ** 3;
const NODES = ['pm-1', 'pm-2', 'pm-3'];
const CONFIG = configSchema.parse({ nodes: NODES.map((name) => ({ name, address: ADDRESSES[name] })) });
const MODEL_CONFIG = { nodes: CONFIG.nodes, ignorePrefix: CONFIG.ignorePrefix };
const HOST_KEY = (n: string) => fakeKey(NODES.indexOf(n) + 1);
const ROOT_KEY = (n: string) => fakeKey(NODES.indexOf(n) + 11);

function target(name: string): SshTarget {
  return {
    name, host: ADDRESSES[name]!, port: 22, user: 'root', identityFiles: [], agentSocket: undefined, knownHostsFiles: [],
    connectTimeoutMs: 10_000, keepaliveIntervalMs: 15_000, jump: undefined, sudo: false,
  };
}

/** A node pm init is happy with: QEMU behind libvirt, and everything the factory's defaults say. */
function readyFacts(name: string, parts: Partial<NodeFacts> = {}): NodeFacts {
  return nodeFacts(name, {
    libvirt: { active: true, version: { library: '9.0.0', hypervisor: { name: 'QEMU', version: '7.2.0' } }, nodeInfo: undefined },
    ...parts,
  });
}

/** Trust facts where every node knows and authorizes every other node. */
function trustedEverywhere(name: string, parts: Partial<InitFacts['trust']> = {}): InitFacts {
  const known = NODES.map((n) => `${n},${ADDRESSES[n]} ${keyLine(HOST_KEY(n))}`).join('\n');
  return {
    drbdModuleVersion: '8.4.11',
    trust: {
      hostKeys: [HOST_KEY(name)],
      rootKeys: [{ file: '/root/.ssh/id_ed25519', key: ROOT_KEY(name) }],
      authorizedKeys: NODES.map(ROOT_KEY),
      knownHosts: parseKnownHosts(known, '/root/.ssh/known_hosts'),
      ...parts,
    },
  };
}

function checksOf(facts: NodeFacts, extra: InitFacts | undefined = trustedEverywhere(facts.hostname)): InitCheck[] {
  const state = buildCluster(MODEL_CONFIG, [{ node: 'pm-1', ok: true, value: facts }]);
  return nodeChecks(state.nodes[0]!, target('pm-1'), extra, CONFIG);
}

function only(checks: InitCheck[], name: string): InitCheck {
  const found = checks.find((c) => c.check === name);
  assert.ok(found, `no check ${name}`);
  return found;
}

test('a ready node passes every check, and the detail says what was found', () => {
  const checks = checksOf(readyFacts('pm-1'));
  assert.deepEqual(checks.map((c) => [c.check, c.status]), [
    ['hostname', 'PASS'], ['ssh', 'PASS'], ['drbd', 'PASS'], ['drbd-utils', 'PASS'], ['libvirt', 'PASS'], ['bridge', 'PASS'],
    ['vg', 'PASS'], ['backup-dir', 'PASS'], ['xdelta3', 'PASS'], ['rsync', 'PASS'], ['root-key', 'PASS'],
  ]);
  assert.equal(only(checks, 'ssh').detail, 'root@10.99.0.11:22');
  assert.equal(only(checks, 'drbd').detail, 'module 8.4.11 loaded');
  assert.equal(only(checks, 'libvirt').detail, 'libvirt 9.0.0, QEMU 7.2.0');
  assert.equal(only(checks, 'vg').detail, 'vg-pmc: 8 GiB, 6 GiB free');
  assert.match(only(checks, 'root-key').detail, /^\/root\/.ssh\/id_ed25519 \(ssh-ed25519 SHA256:/);
  assert.ok(checks.every((c) => c.steps.length === 0 && c.fix === undefined));
});

test('each failing check says how to fix it; only the safe fixes come with steps', () => {
  const noBridge = { name: 'br0', present: false, isBridge: false, up: false, carrier: false, operState: undefined };
  const cases: Array<[string, Partial<NodeFacts>, InitFacts | undefined, RegExp, string | undefined]> = [
    ['hostname', { hostname: 'node1' }, undefined, /hostnamectl set-hostname pm-1/, undefined],
    ['drbd', { drbd: { moduleLoaded: false, kernelVersion: undefined, utilsVersion: '9.22.0', minorsInKernel: [] } }, undefined, /^modprobe drbd$/, 'modprobe drbd'],
    ['drbd-utils', { drbd: { moduleLoaded: true, kernelVersion: '8.4.11', utilsVersion: undefined, minorsInKernel: [] } }, undefined, /apt-get install drbd-utils/, undefined],
    ['libvirt', { libvirt: { active: false, version: undefined, nodeInfo: undefined }, problems: ['virsh-version: exit 1: error: failed to connect'] }, undefined, /systemctl start libvirtd/, 'systemctl start libvirtd'],
    ['libvirt', { libvirt: { active: true, version: { library: '9.0.0', hypervisor: { name: 'LXC', version: '9.0.0' } }, nodeInfo: undefined } }, undefined, /libvirt-daemon-driver-qemu/, undefined],
    ['bridge', { bridge: noBridge }, undefined, /ip link add br0 type bridge/, undefined],
    ['bridge', { bridge: { ...noBridge, present: true, isBridge: true } }, undefined, /ip link set br0 up/, undefined],
    ['bridge', { bridge: { ...noBridge, present: true } }, undefined, /network\.bridge/, undefined],
    ['vg', { vg: undefined }, undefined, /pvcreate <device> && vgcreate vg-pmc <device>/, undefined],
    ['backup-dir', { backupDirExists: false }, undefined, /mkdir -p \/pmc-vm-backup/, 'mkdir -p /pmc-vm-backup'],
    ['xdelta3', { tools: { xdelta3: false, rsync: true, zstd: true } }, undefined, /apt-get install xdelta3/, undefined],
    ['rsync', { tools: { xdelta3: true, rsync: false, zstd: true } }, undefined, /apt-get install rsync/, undefined],
    ['root-key', {}, trustedEverywhere('pm-1', { rootKeys: [] }), /ssh-keygen/, "umask 077 && mkdir -p /root/.ssh && { test -e /root/.ssh/id_ed25519 || ssh-keygen -q -t ed25519 -N '' -C root@pm-1 -f /root/.ssh/id_ed25519; } && { test -e /root/.ssh/id_ed25519.pub || ssh-keygen -y -f /root/.ssh/id_ed25519 > /root/.ssh/id_ed25519.pub; }"],
  ];
  for (const [name, parts, extra, fix, step] of cases) {
    const checks = checksOf(readyFacts('pm-1', parts), extra ?? trustedEverywhere('pm-1'));
    const c = checks.find((x) => x.check === name && x.status === 'FAIL');
    assert.ok(c, `${name} should fail with ${JSON.stringify(parts)}`);
    assert.match(c.fix!, fix, name);
    assert.deepEqual(c.steps.map((s) => s.command), step ? [step] : [], `${name}: steps`);
    assert.ok(c.steps.every((s) => s.node === 'pm-1'));
  }
});

test('the drbd module: missing from the kernel, DRBD 9 (a warning) and 8.3 (a failure)', () => {
  const notLoaded = { moduleLoaded: false, kernelVersion: undefined, utilsVersion: '9.22.0', minorsInKernel: [] };
  const missing = only(checksOf(readyFacts('pm-1', { drbd: notLoaded }), { ...trustedEverywhere('pm-1'), drbdModuleVersion: undefined }), 'drbd');
  assert.equal(missing.status, 'FAIL');
  assert.equal(missing.detail, 'no drbd kernel module');
  assert.deepEqual(missing.steps, [], 'modprobe cannot help');
  const nine = only(checksOf(readyFacts('pm-1', { drbd: { ...notLoaded, moduleLoaded: true, kernelVersion: '9.2.8' } })), 'drbd');
  assert.equal(nine.status, 'WARN');
  const old = only(checksOf(readyFacts('pm-1', { drbd: { ...notLoaded, moduleLoaded: true, kernelVersion: '8.3.16' } })), 'drbd');
  assert.equal(old.status, 'FAIL');
});

test('a nearly full volume group is a warning', () => {
  const c = only(checksOf(readyFacts('pm-1', { vg: { name: 'vg-pmc', sizeBytes: 8 * GiB, freeBytes: GiB / 2, extentSizeBytes: 4 * 1024 ** 2 } })), 'vg');
  assert.equal(c.status, 'WARN');
  assert.match(c.fix!, /vgextend vg-pmc/);
});

test('an unreachable node is one FAIL with the SSH error and its hint', () => {
  const probe: NodeProbe = { node: 'pm-1', ok: false, error: { code: 'PMC_E_HOSTKEY_UNKNOWN', message: 'pm-1: host key unknown', hint: 'ssh-keyscan ...' } };
  const state = buildCluster(MODEL_CONFIG, [probe]);
  const checks = nodeChecks(state.nodes[0]!, target('pm-1'), undefined, CONFIG);
  assert.deepEqual(checks.map((c) => [c.check, c.status, c.fix]), [['ssh', 'FAIL', 'ssh-keyscan ...']]);
  assert.match(checks[0]!.detail, /^pm-1: host key unknown; no other check could run$/);
});

test('pm init pm-3 on three nodes: pm-3\'s checks and trust both ways with each other node, nothing between pm-1 and pm-2', () => {
  const facts = new Map<string, InitFacts>([
    ['pm-1', trustedEverywhere('pm-1')],
    // pm-2 has no key pair yet; pm-3 is new: nobody knows it, and it trusts nobody.
    ['pm-2', trustedEverywhere('pm-2', { rootKeys: [], knownHosts: parseKnownHosts(`pm-1,10.99.0.11 ${keyLine(HOST_KEY('pm-1'))}`, 'k') })],
    ['pm-3', trustedEverywhere('pm-3', { authorizedKeys: [], knownHosts: [] })],
  ]);
  facts.get('pm-1')!.trust.knownHosts = parseKnownHosts(['pm-1', 'pm-2'].map((n) => `${n},${ADDRESSES[n]} ${keyLine(HOST_KEY(n))}`).join('\n'), 'k');
  const state = buildCluster(MODEL_CONFIG, NODES.map((n) => ({ node: n, ok: true, value: readyFacts(n) })));
  const checks = evaluateInit({ config: CONFIG, state, targets: NODES.map(target), facts, scope: ['pm-3'] });

  const trust = checks.filter((c) => c.check.startsWith('ssh to'));
  assert.deepEqual(trust.map((c) => [c.node, c.check, c.status]), [
    ['pm-1', 'ssh to pm-3', 'FAIL'],
    ['pm-2', 'ssh to pm-3', 'FAIL'],
    ['pm-3', 'ssh to pm-1', 'FAIL'],
    ['pm-3', 'ssh to pm-2', 'FAIL'],
  ]);
  assert.match(trust[0]!.detail, /pm-1's root key is not in pm-3's \/root\/.ssh\/authorized_keys; pm-1 does not know pm-3's host key as pm-3, 10\.99\.0\.13/);
  assert.match(trust[1]!.detail, /pm-2 has no root key/);
  assert.match(trust[2]!.detail, /^pm-3 does not know pm-1's host key as pm-1, 10\.99\.0\.11$/, 'pm-1 already authorizes pm-3');
  assert.deepEqual(checks.filter((c) => !c.check.startsWith('ssh to')).map((c) => c.node), Array(11).fill('pm-3'));

  const plan = fixPlan(checks);
  assert.deepEqual(plan.steps.map((s) => [s.node, s.why.split(':')[0]]), [
    ['pm-3', 'let root from pm-1 log in to pm-3'],
    ['pm-1', 'let pm-1 verify pm-3'],
    ['pm-2', 'generate an SSH key pair for root on pm-2 (/root/.ssh/id_ed25519)'],
    ['pm-3', 'let root from pm-2 log in to pm-3'],
    ['pm-2', 'let pm-2 verify pm-3'],
    ['pm-3', 'let pm-3 verify pm-1'],
    ['pm-3', 'let pm-3 verify pm-2'],
  ]);
  assert.deepEqual(plan.steps[3]!.input, { fromNode: 'pm-2', command: 'cat /root/.ssh/id_ed25519.pub' });
});

test('trusted pairs pass, and carry the ssh commands that prove it', () => {
  const facts = new Map(NODES.map((n) => [n, trustedEverywhere(n)]));
  const state = buildCluster(MODEL_CONFIG, NODES.map((n) => ({ node: n, ok: true, value: readyFacts(n) })));
  const checks = evaluateInit({ config: CONFIG, state, targets: NODES.map(target), facts, scope: NODES });
  assert.ok(checks.every((c) => c.status === 'PASS'), JSON.stringify(checks.filter((c) => c.status !== 'PASS')));
  assert.equal(checks.filter((c) => c.check.startsWith('ssh to')).length, 6);
  assert.deepEqual(checks.find((c) => c.node === 'pm-2' && c.check === 'ssh to pm-3')!.proofs, [
    'ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o UpdateHostKeys=no -o ConnectTimeout=10 pm-3 true',
    'ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o UpdateHostKeys=no -o ConnectTimeout=10 10.99.0.13 true',
  ]);
  assert.equal(fixPlan(checks).steps.length, 0);
});

test('a conflicting host key fails with the manual fix and no step for that name', () => {
  const facts = new Map(NODES.map((n) => [n, trustedEverywhere(n)]));
  facts.get('pm-1')!.trust.knownHosts = parseKnownHosts(NODES.map((n) => `${n},${ADDRESSES[n]} ${keyLine(n === 'pm-2' ? fakeKey(77) : HOST_KEY(n))}`).join('\n'), '/root/.ssh/known_hosts');
  const state = buildCluster(MODEL_CONFIG, NODES.map((n) => ({ node: n, ok: true, value: readyFacts(n) })));
  const c = evaluateInit({ config: CONFIG, state, targets: NODES.map(target), facts, scope: ['pm-1'] }).find((x) => x.node === 'pm-1' && x.check === 'ssh to pm-2')!;
  assert.equal(c.status, 'FAIL');
  assert.match(c.detail, /different host key for pm-2 \(\/root\/.ssh\/known_hosts:2\), 10\.99\.0\.12/);
  assert.match(c.fix!, /ssh-keygen -R pm-2 -f \/root\/.ssh\/known_hosts; ssh-keygen -R 10\.99\.0\.12/);
  assert.deepEqual(c.steps, []);
});

test('markFixed: FAIL before and PASS after is FIXED; the rest keep their status', () => {
  const c = (check: string, status: InitCheck['status']): InitCheck => ({ node: 'pm-1', check, status, detail: '', fix: undefined, steps: [], proofs: [] });
  const after = markFixed([c('a', 'FAIL'), c('b', 'FAIL'), c('c', 'PASS')], [c('a', 'PASS'), c('b', 'FAIL'), c('c', 'PASS')]);
  assert.deepEqual(after.map((x) => x.status), ['FIXED', 'FAIL', 'PASS']);
});

test('the view: checks by node, the fix under each failure, the plan on a dry run, a summary', () => {
  const failing = checksOf(readyFacts('pm-1', { backupDirExists: false, tools: { xdelta3: false, rsync: true, zstd: true } }));
  const text = initView({ checks: failing, mode: 'dry-run', plan: fixPlan(failing), applied: [] }, { style: plainStyle, headers: true, verbose: false });
  const lines = text.split('\n');
  assert.equal(lines[0], 'pm-1');
  assert.match(text, /^ {2}FAIL {2}backup-dir +\/pmc-vm-backup does not exist\n {20}fix: mkdir -p \/pmc-vm-backup \(pmc pm init --fix does this\)$/m);
  assert.match(text, /^ {2}FAIL {2}xdelta3 +not installed\n +fix: apt-get install xdelta3$/m);
  assert.match(text, /^dry run, nothing changed: apply the safe fixes on pm-1 \(1 steps\)\n {2}1\. \[pm-1\] create the backup directory \/pmc-vm-backup\n {7}\$ mkdir -p \/pmc-vm-backup$/m);
  assert.equal(lines.at(-1), '1 node: 9 passed, 0 fixed, 0 warnings, 2 failed');
});

const SHARED_CONFIG = configSchema.parse({ nodes: NODES.map((name) => ({ name, address: ADDRESSES[name] })), storage: { shared: { directory: SHARED_DIR } } });

function sharedChecks(shared: Record<string, NodeFacts['shared']>, scope = NODES): InitCheck[] {
  const state = buildCluster({ ...MODEL_CONFIG, storage: SHARED_CONFIG.storage }, NODES.map((n) => ({ node: n, ok: true, value: readyFacts(n, { shared: shared[n] ?? sharedFacts() }) })));
  const facts = new Map(NODES.map((n) => [n, trustedEverywhere(n)]));
  return evaluateInit({ config: SHARED_CONFIG, state, targets: NODES.map(target), facts, scope }).filter((c) => c.check === 'shared');
}

test('storage.shared: each node in scope passes when it mounts the directory and sees the same marker', () => {
  const checks = sharedChecks({});
  assert.deepEqual(checks.map((c) => [c.node, c.status, c.detail]), NODES.map((n) => [n, 'PASS', `${SHARED_DIR}: nfs4, marker ${SHARED_ID}`]));
  const other = sharedChecks({ 'pm-3': sharedFacts({ mountPoint: false, fsType: 'ext4', id: undefined }) }, ['pm-3']);
  assert.deepEqual(other.map((c) => [c.node, c.status, c.detail, c.steps.length]), [
    ['pm-3', 'FAIL', `${SHARED_DIR} is not a mount point (it is on the ext4 file system of a parent)`, 0],
  ]);
  assert.match(other[0]!.fix!, /^mount the shared file system at \/var\/lib\/pmc-shared on pm-3/);
});

test('storage.shared without a marker anywhere: one node (the first that mounts it) gets the step that writes it', () => {
  const unmarked = sharedFacts({ id: undefined });
  const checks = sharedChecks({ 'pm-1': sharedFacts({ present: false, mountPoint: false, id: undefined }), 'pm-2': unmarked, 'pm-3': unmarked });
  assert.deepEqual(checks.map((c) => [c.node, c.status, c.steps.length]), [['pm-1', 'FAIL', 0], ['pm-2', 'FAIL', 1], ['pm-3', 'FAIL', 0]]);
  assert.equal(checks[2]!.fix, 'pmc pm init --fix (writes the marker once, from one node)');
  assert.deepEqual(fixPlan(checks).steps.map((s) => s.node), ['pm-2']);
});

test('the marker step writes one random id, atomically, and a second run (a racing init) keeps the first id', (t) => {
  const dir = tempDirFor(t, 'shared-marker');
  const step = sharedMarkerStep('pm-1', dir);
  execFileSync('sh', ['-c', step.command]);
  const id = readFileSync(`${dir}/.pmc-shared-id`, 'utf8');
  assert.match(id, /^[0-9a-f]{32}\n$/);
  execFileSync('sh', ['-c', step.command]);
  assert.equal(readFileSync(`${dir}/.pmc-shared-id`, 'utf8'), id);
  assert.deepEqual(readdirSync(dir), ['.pmc-shared-id'], 'no temporary file is left');
});
