import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { configCandidates, findConfig } from '../../../src/config/find.js';
import { loadConfig, parseConfig } from '../../../src/config/load.js';
import { INSTALL_DIR } from '../../../src/util/install.js';
import { selectNodes, sshTargets } from '../../../src/config/targets.js';
import { PmcError } from '../../../src/util/errors.js';
import { tempDirFor } from '../../temp-dir.js';

const env = { HOME: '/home/op' };

function configError(text: string): PmcError {
  try {
    parseConfig(text, '/etc/pmc/pmc.yaml', env);
  } catch (err) {
    assert.ok(err instanceof PmcError, `expected a PmcError, got ${String(err)}`);
    return err;
  }
  assert.fail('the config was accepted');
}

test('the sample etc/pmc.yaml is valid and documents the defaults', () => {
  const config = loadConfig(join(INSTALL_DIR, 'etc', 'pmc.yaml'), env);
  assert.deepEqual(config.nodes.map((n) => n.name), ['pm-1', 'pm-2']);
  assert.equal(config.storage.volumeGroup, 'vg-pmc');
  assert.equal(config.network.bridge, 'br0');
  assert.equal(config.backups.directory, '/pmc-vm-backup');
  assert.equal(config.ignorePrefix, 'ignore');
  assert.deepEqual(config.ssh.knownHosts, ['/home/op/.ssh/known_hosts']);
  assert.equal(config.isoStore, join(INSTALL_DIR, 'iso'));
});

test('a minimal config gets the old tool\'s defaults', () => {
  const config = parseConfig('nodes:\n  - name: pm-1\n', '/etc/pmc/pmc.yaml', env);
  assert.equal(config.ssh.user, 'root');
  assert.equal(config.ssh.port, 22);
  assert.equal(config.ssh.connectTimeout, 10);
  assert.deepEqual(config.storage.drbd.minors, { first: 10, last: 9999 });
  assert.equal(config.backups.retention.full, 2);
});

test('a misspelt key is refused with its line, column and the allowed keys', () => {
  const err = configError('nodes:\n  - name: pm-1\nstorage:\n  volumeGroupp: vg0\n');
  assert.equal(err.code, 'PMC_E_CONFIG_INVALID');
  assert.match(err.message, /^\/etc\/pmc\/pmc\.yaml:4:3: storage\.volumeGroupp: unknown key "volumeGroupp" \(allowed: volumeGroup, drbd, shared\)$/);
});

test('a bad value is refused with its line and what is allowed', () => {
  const err = configError('nodes:\n  - name: pm-1\nssh:\n  port: 99999\n');
  assert.match(err.message, /pmc\.yaml:4:9: ssh\.port: .*<=65535/);
  const name = configError('nodes:\n  - name: "pm 1"\n');
  assert.match(name.message, /pmc\.yaml:2:11: nodes\[0\]\.name: must be a host name/);
});

test('every problem is reported, in file order', () => {
  const err = configError('nodes:\n  - name: pm-1\n    adress: x\nnetwork:\n  bridge: 7\n');
  const lines = err.message.split('\n');
  assert.equal(lines.length, 2);
  assert.match(lines[0]!, /:3:5: nodes\[0\]\.adress: unknown key/);
  assert.match(lines[1]!, /:5:11: network\.bridge: expected string, received number/);
});

test('missing nodes and duplicate nodes are refused', () => {
  assert.match(configError('ssh:\n  user: root\n').message, /nodes: missing required key/);
  assert.match(configError('nodes: []\n').message, /nodes: list at least one node/);
  assert.match(configError('nodes:\n  - name: pm-1\n  - name: pm-1\n').message, /:3:11: nodes\[1\]\.name: node "pm-1" is listed twice/);
});

test('YAML syntax errors name the line', () => {
  const err = configError('nodes:\n  - name: pm-1\n   bad: [\n');
  assert.equal(err.code, 'PMC_E_CONFIG_SYNTAX');
  assert.match(err.message, /^\/etc\/pmc\/pmc\.yaml:\d+:\d+: /);
});

test('the config is found at --config, $PMC_CONFIG, ./pmc.yaml, ~/.config/pmc, /etc/pmc in that order', () => {
  assert.deepEqual(configCandidates('/x/a.yaml', { PMC_CONFIG: '/y/b.yaml' }), ['/x/a.yaml']);
  assert.deepEqual(configCandidates(undefined, { PMC_CONFIG: '/y/b.yaml' }), ['/y/b.yaml']);
  const fallbacks = configCandidates(undefined, { HOME: '/home/op' });
  assert.deepEqual(fallbacks.slice(1), ['/home/op/.config/pmc/pmc.yaml', '/etc/pmc/pmc.yaml']);
  assert.throws(() => findConfig('/nonexistent/pmc.yaml'), (e: PmcError) =>
    e.code === 'PMC_E_CONFIG_NOT_FOUND' && /\/nonexistent\/pmc\.yaml \(from --config\) does not exist/.test(e.message));
});

test('per-node SSH overrides win over the defaults; paths resolve against the config file', (t) => {
  const dir = tempDirFor(t, 'config');
  const file = join(dir, 'pmc.yaml');
  writeFileSync(file, [
    'nodes:',
    '  - name: pm-1',
    '    address: 10.1.1.1',
    '  - name: pm-2',
    '    ssh: { port: 2222, user: admin, sudo: true, knownHosts: [kh1, kh2] }',
    'ssh:',
    '  identityFiles: [keys/id]',
    '  connectTimeout: 3',
    '  jumpHost: { host: bastion }',
  ].join('\n'));
  const config = loadConfig(file, { HOME: '/home/op', SSH_AUTH_SOCK: '/run/agent.sock' });
  const [a, b] = sshTargets(config, { SSH_AUTH_SOCK: '/run/agent.sock' });
  assert.equal(a!.host, '10.1.1.1');
  assert.equal(a!.port, 22);
  assert.deepEqual(a!.identityFiles, [join(dir, 'keys/id')]);
  assert.equal(a!.connectTimeoutMs, 3000);
  assert.equal(a!.agentSocket, '/run/agent.sock');
  assert.equal(a!.jump?.host, 'bastion');
  assert.equal(b!.host, 'pm-2');
  assert.equal(b!.port, 2222);
  assert.equal(b!.user, 'admin');
  assert.equal(b!.sudo, true);
  assert.deepEqual(b!.knownHostsFiles, [join(dir, 'kh1'), join(dir, 'kh2')]);
  assert.throws(() => selectNodes(config, ['pm-9']), (e: PmcError) => e.code === 'PMC_E_NODE_UNKNOWN' && /known nodes: pm-1, pm-2/.test(e.hint ?? ''));
});

test('storage.shared: absent by default; its directory must be an absolute path that cannot be read as an option', () => {
  assert.equal(parseConfig('nodes:\n  - name: pm-1\n', '/etc/pmc/pmc.yaml', env).storage.shared, undefined);
  const config = parseConfig('nodes:\n  - name: pm-1\nstorage:\n  shared:\n    directory: /var/lib/pmc-shared\n', '/etc/pmc/pmc.yaml', env);
  assert.deepEqual(config.storage.shared, { directory: '/var/lib/pmc-shared' });
  assert.equal(config.storage.volumeGroup, 'vg-pmc', 'the DRBD settings keep their defaults');
  for (const bad of ['-rf', 'var/lib/pmc-shared', '/var/lib/pmc-shared/', '/', '"/a\\nb"']) {
    const err = configError(`nodes:\n  - name: pm-1\nstorage:\n  shared:\n    directory: ${bad}\n`);
    assert.match(err.message, /storage\.shared\.directory: must/, bad);
  }
  assert.match(configError('nodes:\n  - name: pm-1\nstorage:\n  shared:\n    dir: /x\n').message, /unknown key "dir"/);
});
