// pmc pm add and pm rm without SSH: pmc.yaml edited through the YAML document (every comment and
// line of the operator's file kept), the refusals (a name already listed, a wrong fingerprint, a
// node that holds a VM's copy, alive or not), the known_hosts line and the rerun command, and the
// trust removal run for real on a copy of an authorized_keys file.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parseConfig } from '../../../src/config/load.js';
import { sshTargets } from '../../../src/config/targets.js';
import { assertFingerprint, assertNewNode, knownHostsLine, rerunWithFingerprint, withNode } from '../../../src/ops/pm/add.js';
import { addNodeToYaml, removeNodeFromYaml } from '../../../src/ops/pm/nodes-yaml.js';
import { planPmRm } from '../../../src/ops/pm/rm.js';
import { AUTHORIZED_KEYS, KNOWN_HOSTS, type TrustFacts } from '../../../src/ops/pm/ssh-trust.js';
import { fingerprintSha256, parseKnownHosts } from '../../../src/ssh/known-hosts.js';
import { PmcError, type PmcErrorCode } from '../../../src/util/errors.js';
import { pairedVm, SHARED_DIR, sharedMounts, sharedVm } from '../model/factory.js';
import { tempDirFor } from '../../temp-dir.js';
import { fakeKey, keyLine } from './ssh-keys.js';
import { cluster, config, withNodeDown } from './vm-add-helpers.js';

const FILE = '/etc/pmc/pmc.yaml';
const YAML = `# pmc.yaml of the test cluster
# (kept by hand; pmc must not lose these lines)
nodes:
  # the first node
  - name: pm-1
    address: 10.99.0.11 # its bridge address
  - { name: pm-2, address: "10.99.0.12" }
  # pm-3 has a fence command
  - name: pm-3
    address: '10.99.0.13'
    fence: "ipmitool -H pm-3-ipmi power off"

ssh:
  user: root # the nodes' root
  knownHosts: ~/.ssh/known_hosts

# storage as the old tool had it
storage:
  volumeGroup: vg-pmc
`;

const lines = (text: string) => text.split('\n');

function refusal(code: PmcErrorCode, pattern: RegExp, hint?: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof PmcError, String(err));
    assert.equal(err.code, code);
    assert.match(err.message, pattern);
    if (hint) assert.match(err.hint ?? '', hint);
    return true;
  };
}

describe('pmc.yaml edits', () => {
  test('add: every line of the file stays, in order, and the node is listed last', () => {
    const after = addNodeToYaml(YAML, FILE, { name: 'pm-4', address: '10.99.0.14' });
    const added = lines(after).filter((l) => !lines(YAML).includes(l));
    assert.deepEqual(added, ['  - name: pm-4', '    address: 10.99.0.14']);
    assert.equal(after.replace('  - name: pm-4\n    address: 10.99.0.14\n', ''), YAML, 'every other byte as it was');
    assert.deepEqual(lines(after).filter((l) => lines(YAML).includes(l)), lines(YAML));
    const config = parseConfig(after, FILE, {});
    assert.deepEqual(config.nodes.map((n) => [n.name, n.address]), [['pm-1', '10.99.0.11'], ['pm-2', '10.99.0.12'], ['pm-3', '10.99.0.13'], ['pm-4', '10.99.0.14']]);
    assert.equal(config.nodes[2]!.fence, 'ipmitool -H pm-3-ipmi power off');
  });

  test('add without an address lists the name alone', () => {
    const config = parseConfig(addNodeToYaml(YAML, FILE, { name: 'pm-4' }), FILE, {});
    assert.deepEqual(config.nodes.at(-1), { name: 'pm-4' });
  });

  test('rm: only the node\'s own lines (and its comment) go; every other line and comment stays', () => {
    const after = removeNodeFromYaml(YAML, FILE, 'pm-3');
    const gone = lines(YAML).filter((l) => !lines(after).includes(l));
    assert.deepEqual(gone, ['  # pm-3 has a fence command', '  - name: pm-3', "    address: '10.99.0.13'", '    fence: "ipmitool -H pm-3-ipmi power off"']);
    assert.deepEqual(lines(after), lines(YAML).filter((l) => !gone.includes(l)));
    assert.equal(after, YAML.replace(`${gone.join('\n')}\n`, ''), 'every other byte as it was');
    assert.deepEqual(parseConfig(after, FILE, {}).nodes.map((n) => n.name), ['pm-1', 'pm-2']);
  });

  test('rm of a flow-style entry in the middle, then add back: the rest is untouched', () => {
    const after = addNodeToYaml(removeNodeFromYaml(YAML, FILE, 'pm-2'), FILE, { name: 'pm-2', address: '10.99.0.12' });
    assert.deepEqual(lines(YAML).filter((l) => !lines(after).includes(l)), ['  - { name: pm-2, address: "10.99.0.12" }']);
    assert.deepEqual(parseConfig(after, FILE, {}).nodes.map((n) => n.name), ['pm-1', 'pm-3', 'pm-2']);
  });

  test('flow lists, aligned comments and an indent of four stay byte for byte (the yaml library would re-render them)', () => {
    const text = 'nodes:\n    -   name: a\n        address: 10.0.0.1     # aligned\nssh:\n  identityFiles: [/root/.ssh/id_ed25519]\n';
    const added = addNodeToYaml(text, FILE, { name: 'b', address: '10.0.0.2' });
    assert.equal(added, text.replace('ssh:', '    -   name: b\n        address: 10.0.0.2\nssh:'));
    assert.equal(removeNodeFromYaml(added, FILE, 'b'), text);
    assert.deepEqual(parseConfig(added, FILE, {}).nodes.map((n) => n.name), ['a', 'b']);
  });

  test('a file without a node list, or without the node, is refused', () => {
    assert.throws(() => addNodeToYaml('ssh:\n  user: root\n', FILE, { name: 'pm-4' }), refusal('PMC_E_CONFIG_INVALID', /no "nodes:" list/));
    assert.throws(() => removeNodeFromYaml(YAML, FILE, 'pm-9'), refusal('PMC_E_NODE_UNKNOWN', /"pm-9" is not in \/etc\/pmc\/pmc.yaml/));
  });
});

describe('pm add', () => {
  const cfg = config();
  const key = Buffer.from(fakeKey(40).base64, 'base64');

  test('a name already in pmc.yaml is refused, with what to do instead', () => {
    assert.throws(() => assertNewNode(cfg, 'pm-2'), refusal('PMC_E_USAGE', /node "pm-2" is already in/, /pmc pm init pm-2.*pmc pm rm pm-2/));
    assert.doesNotThrow(() => assertNewNode(cfg, 'pm-4'));
  });

  test('the new node is reached with pmc.yaml\'s SSH defaults, at its address', () => {
    const { target, config: next } = withNode(config('ssh:\n  port: 2222\n  user: admin\n  sudo: true\n'), { name: 'pm-4', address: '10.99.0.14' });
    assert.deepEqual([target.name, target.host, target.port, target.user, target.sudo], ['pm-4', '10.99.0.14', 2222, 'admin', true]);
    assert.deepEqual(sshTargets(next).map((t) => t.name), ['pm-1', 'pm-2', 'pm-3', 'pm-4']);
  });

  test('--fingerprint: the shown key must have it, else refused with the key shown and how to check it', () => {
    const { target } = withNode(cfg, { name: 'pm-4', address: '10.99.0.14' });
    assert.doesNotThrow(() => assertFingerprint(target, key, fingerprintSha256(key)));
    const other = fingerprintSha256(Buffer.from(fakeKey(41).base64, 'base64'));
    assert.throws(() => assertFingerprint(target, key, other), refusal('PMC_E_HOSTKEY_CHANGED',
      new RegExp(`10\\.99\\.0\\.14 shows the host key ssh-ed25519 ${fingerprintSha256(key).replace(/[+/]/g, '\\$&')}, not ${other.replace(/[+/]/g, '\\$&')}; nothing was written`),
      /ssh-keygen -lf \/etc\/ssh\/ssh_host_ed25519_key\.pub/));
  });

  test('the known_hosts line names the node and its address, as connections look them up', () => {
    const at22 = knownHostsLine(withNode(cfg, { name: 'pm-4', address: '10.99.0.14' }).target, key);
    assert.equal(at22, `pm-4,10.99.0.14 ${keyLine(fakeKey(40))}`);
    const entry = parseKnownHosts(at22, 'k')[0]!;
    assert.ok(entry.keyBlob.equals(key));
    const at2222 = knownHostsLine(withNode(config('ssh:\n  port: 2222\n'), { name: 'pm-4' }).target, key);
    assert.equal(at2222, `[pm-4]:2222 ${keyLine(fakeKey(40))}`);
  });

  test('the rerun command is the typed one plus the fingerprint, safe to paste', () => {
    const fp = fingerprintSha256(key);
    const rerun = rerunWithFingerprint("pmc pm add 'pm-4' --config '/tmp/my cluster/pmc.yaml'", fp);
    assert.equal(rerun, `pmc pm add 'pm-4' --config '/tmp/my cluster/pmc.yaml' --fingerprint ${fp}`);
    const words = execFileSync('sh', ['-c', `printf '%s\\n' ${rerun.replace(/^pmc /, '')}`], { encoding: 'utf8' });
    assert.deepEqual(words.trim().split('\n'), ['pm', 'add', 'pm-4', '--config', '/tmp/my cluster/pmc.yaml', '--fingerprint', fp]);
  });
});

describe('pm rm', () => {
  const cfg = config();
  const ROOT3 = fakeKey(13);
  const HOST3 = fakeKey(3);
  const facts = (parts: Partial<TrustFacts> = {}): TrustFacts => ({ hostKeys: [], rootKeys: [], authorizedKeys: [], knownHosts: [], ...parts });
  /** pm-1 trusts pm-3 both ways pm init sets up; pm-2 knows it only by name, beside another key of its own. */
  const trust = new Map<string, TrustFacts>([
    ['pm-1', facts({ authorizedKeys: [ROOT3, fakeKey(12)], knownHosts: parseKnownHosts(`pm-3,10.99.0.13 ${keyLine(HOST3)}\npm-2 ${keyLine(fakeKey(2))}\n`, KNOWN_HOSTS) })],
    ['pm-2', facts({ authorizedKeys: [fakeKey(11)], knownHosts: parseKnownHosts(`pm-3 ${keyLine(HOST3)}\n`, KNOWN_HOSTS) })],
    ['pm-3', facts({ rootKeys: [{ file: '/root/.ssh/id_ed25519', key: ROOT3 }], hostKeys: [HOST3] })],
  ]);
  const input = (state: ReturnType<typeof cluster>) => ({ state, node: 'pm-3', port: 22, trust, configFile: FILE });

  test('refused while the node holds a VM\'s copy, pointing at evacuate', () => {
    const state = cluster(cfg, pairedVm('web', 'pm-1', 'pm-3', 11), pairedVm('db', 'pm-1', 'pm-2', 12));
    assert.throws(() => planPmRm(input(state)), refusal('PMC_E_STATE', /^pm-3 holds a copy of web; nothing was changed$/, /pmc pm evacuate --secondaries pm-3/));
  });

  test('shared-storage VMs: one running on the node refuses it; one only defined there is undefined there first', () => {
    const sharedCfg = config('', ['pm-1', 'pm-2', 'pm-3'], ['  shared:', `    directory: ${SHARED_DIR}`]);
    const nodes = ['pm-1', 'pm-2', 'pm-3'];
    const running = cluster(sharedCfg, sharedMounts(nodes), sharedVm('web', nodes, ['pm-3']));
    assert.throws(() => planPmRm(input(running)), refusal('PMC_E_STATE', /^pm-3 holds a copy of web; nothing was changed$/, /pmc pm evacuate/));
    const plan = planPmRm(input(cluster(sharedCfg, sharedMounts(nodes), sharedVm('web', nodes, ['pm-1']))));
    assert.deepEqual([plan.steps[0]!.node, plan.steps[0]!.command], ['pm-3', 'virsh undefine uuid-of-web']);
    assert.ok(plan.steps.slice(1).every((s) => s.node !== 'pm-3'), 'nothing else runs on pm-3');
  });

  test('a node that does not answer: refused while another node names it as a DRBD peer', () => {
    const state = withNodeDown(cfg, 'pm-3', pairedVm('web', 'pm-1', 'pm-3', 11));
    assert.throws(() => planPmRm(input(state)), refusal('PMC_E_STATE', /pm-3 does not answer, and the other nodes name it as the DRBD peer of web/, /peer-recreate/));
  });

  test('a node that does not answer and that no VM names may go: the plan says so', () => {
    const state = withNodeDown(cfg, 'pm-3', pairedVm('db', 'pm-1', 'pm-2', 12));
    const plan = planPmRm({ ...input(state), trust: new Map([...trust].filter(([n]) => n !== 'pm-3')) });
    assert.ok(plan.notes.some((n) => /pm-3 does not answer; no VM on the other nodes names it as a DRBD peer/.test(n)));
    assert.ok(plan.notes.some((n) => /pm-3's root key could not be read: any entry for it in the others' \/root\/.ssh\/authorized_keys stays/.test(n)));
    // Its host key names still leave the others' known_hosts; no authorized_keys step without its key.
    assert.deepEqual(plan.steps.map((s) => [s.node, s.command.split(' ')[0]]), [['pm-1', 'ssh-keygen'], ['pm-1', 'ssh-keygen'], ['pm-2', 'ssh-keygen']]);
  });

  test('an empty node: its key leaves the authorized_keys that hold it, its names the known_hosts that hold them', () => {
    const plan = planPmRm(input(cluster(cfg, pairedVm('db', 'pm-1', 'pm-2', 12))));
    assert.deepEqual(plan.steps.map((s) => [s.node, s.command]), [
      ['pm-1', `sed -i -e '\\|${keyLine(ROOT3)}|d' ${AUTHORIZED_KEYS}`],
      ['pm-1', `ssh-keygen -R pm-3 -f ${KNOWN_HOSTS}`],
      ['pm-1', `ssh-keygen -R 10.99.0.13 -f ${KNOWN_HOSTS}`],
      ['pm-2', `ssh-keygen -R pm-3 -f ${KNOWN_HOSTS}`],
    ]);
    assert.match(plan.notes[0]!, /then remove pm-3 from \/etc\/pmc\/pmc.yaml/);
  });

  test('a root key pair the node shares with another node stays in authorized_keys, and the plan says why', () => {
    const shared = new Map(trust);
    shared.set('pm-2', { ...trust.get('pm-2')!, rootKeys: [{ file: '/root/.ssh/id_ed25519', key: ROOT3 }] });
    const plan = planPmRm({ ...input(cluster(cfg)), trust: shared });
    assert.ok(!plan.steps.some((s) => s.command.startsWith('sed')), plan.steps.map((s) => s.command).join('\n'));
    assert.ok(plan.notes.some((n) => n.startsWith("pm-3's root key (ssh-ed25519 SHA256:") && n.includes('is also the root key of pm-2: it stays')));
  });

  test('the authorized_keys step removes exactly the node\'s key line, whatever options precede it', (t) => {
    const plan = planPmRm(input(cluster(cfg)));
    const dir = tempDirFor(t, 'pm-rm');
    const file = join(dir, 'authorized_keys');
    const keep = [`${keyLine(fakeKey(12))} root@pm-2`, `# ${keyLine(fakeKey(11))} a comment`];
    writeFileSync(file, [keep[0], `from="10.99.0.0/24",no-pty ${keyLine(ROOT3)} root@pm-3`, keep[1], ''].join('\n'));
    execFileSync('sh', ['-c', plan.steps[0]!.command.replace(AUTHORIZED_KEYS, file)]);
    assert.equal(readFileSync(file, 'utf8'), `${keep.join('\n')}\n`);
  });
});
