/**
 * The read commands end to end, as a user runs them, against real OpenSSH servers on
 * loopback: pmc.yaml → verified SSH → probe → model → rendered output and exit code.
 * The "nodes" are this machine (no DRBD or libvirt here), which is what an unprepared
 * node looks like.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { main } from '../../src/cli/main.js';
import { freePort, generateKey, knownHostsLine, sshdSkip, startSshd, tempDir, type KeyPair, type Sshd } from './sshd.js';

interface Run { code: number; out: string; err: string }

async function pmc(...args: string[]): Promise<Run> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (t) => { out += t; }, err: (t) => { err += t; } }, { ...process.env, NO_COLOR: '1' });
  return { code, out, err };
}

describe('pmc read commands over real SSH', { skip: sshdSkip }, () => {
  let dir: string;
  let client: KeyPair;
  let a: Sshd;
  let b: Sshd;
  let closedPort: number;
  let silent: Server;
  let silentPort: number;

  before(async () => {
    dir = await tempDir('cli');
    client = await generateKey(dir, 'client');
    const authorized = join(dir, 'authorized_keys');
    await writeFile(authorized, `${client.publicLine}\n`);
    [a, b] = await Promise.all([
      startSshd({ dir, host: '127.0.0.1', authorizedKeysFile: authorized }),
      startSshd({ dir, host: '127.0.0.2', authorizedKeysFile: authorized }),
    ]);
    closedPort = await freePort('127.0.0.3');
    // A node that accepts TCP but never speaks SSH: only the connect timeout ends the wait.
    silent = createServer(() => {});
    silentPort = await new Promise<number>((resolve) => silent.listen(0, '127.0.0.4', () => resolve((silent.address() as { port: number }).port)));
  });

  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    silent?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** A pmc.yaml for the given nodes, with its own known_hosts. */
  async function config(name: string, nodes: { name: string; address: string; port: number }[], knownHosts: string[]): Promise<string> {
    const file = join(dir, `${name}.yaml`);
    const known = join(dir, `${name}.known_hosts`);
    await writeFile(known, knownHosts.map((l) => `${l}\n`).join(''));
    await writeFile(file, [
      'nodes:',
      ...nodes.flatMap((n) => [`  - name: ${n.name}`, `    address: ${n.address}`, `    ssh: { port: ${n.port} }`]),
      'ssh:',
      `  identityFiles: [${client.privateFile}]`,
      '  agent: false',
      `  knownHosts: ${known}`,
      '  connectTimeout: 2',
      '',
    ].join('\n'));
    return file;
  }

  const nodeA = () => ({ name: 'pm-a', address: a.host, port: a.port });
  const nodeB = () => ({ name: 'pm-b', address: b.host, port: b.port });

  test('pm ls --json: every node asked, reachable ones described, the unreachable one named with its reason', async () => {
    const file = await config('mixed', [nodeA(), nodeB(), { name: 'pm-c', address: '127.0.0.3', port: closedPort }],
      [knownHostsLine(a, 'ed25519'), knownHostsLine(b, 'ecdsa')]);
    const run = await pmc('pm', 'ls', '--json', '--config', file);
    assert.equal(run.code, 3, run.err);
    const rows = JSON.parse(run.out) as { name: string; reachable: boolean; error?: string; memoryTotalBytes?: number; cpus?: number }[];
    assert.deepEqual(rows.map((r) => [r.name, r.reachable]), [['pm-a', true], ['pm-b', true], ['pm-c', false]]);
    assert.ok(rows[0]!.memoryTotalBytes! > 0);
    assert.ok(rows[0]!.cpus! >= 1);
    assert.match(rows[2]!.error!, /pm-c: connection refused on 127\.0\.0\.3:\d+/);
    assert.match(run.err, /warning: pm-c: connection refused/);
    assert.doesNotMatch(run.err, /\n\s+at /, 'no stack trace');
  });

  test('pm ls table: a row per node, unreachable marked', async () => {
    const file = await config('table', [nodeA(), { name: 'pm-c', address: '127.0.0.3', port: closedPort }], [knownHostsLine(a, 'ed25519')]);
    const run = await pmc('pm', 'ls', '--config', file, '-o', 'name,status,drbd', '--no-headers');
    assert.deepEqual(run.out.trim().split('\n').map((l) => l.split(/\s+/)), [['pm-a', 'up', 'none'], ['pm-c', 'unreachable', '-']]);
  });

  test('an unknown host key is refused with the command that trusts it', async () => {
    const file = await config('unknown', [nodeA(), nodeB()], [knownHostsLine(a, 'ed25519')]);
    const run = await pmc('pm', 'ls', '--json', '--config', file);
    const rows = JSON.parse(run.out) as { name: string; reachable: boolean; error?: string }[];
    assert.equal(rows[0]!.reachable, true);
    assert.equal(rows[1]!.reachable, false);
    assert.match(rows[1]!.error!, /pm-b.*(not known|unknown)/i);
    const verify = await pmc('cluster', 'verify', '--json', '--config', file);
    const findings = (JSON.parse(verify.out) as { findings: { code: string; node: string; fix: string }[] }).findings;
    const refused = findings.find((f) => f.code === 'PMC_V_NODE_UNREACHABLE')!;
    assert.equal(refused.node, 'pm-b');
    assert.match(refused.fix, /ssh-keyscan .*127\.0\.0\.2/);
    assert.equal(verify.code, 1);
  });

  test('a changed host key is refused, never accepted', async () => {
    const impostor = await generateKey(dir, 'impostor');
    const [type, key] = impostor.publicLine.split(' ');
    const file = await config('changed', [nodeA()], [`[${a.host}]:${a.port} ${type} ${key}`]);
    const run = await pmc('vm', 'ls', '--config', file);
    assert.equal(run.code, 3);
    assert.match(run.err, /pm-a.*changed/i);
    assert.doesNotMatch(run.err, /\n\s+at /);
  });

  // The silent node never ends the wait by itself: were no timeout applied, this test's own would fail it.
  test('nodes that do not answer: vm ls reports each as unreachable within the connect timeout, non-zero exit', { timeout: 300_000 }, async () => {
    const file = await config('silent', [{ name: 'pm-s', address: '127.0.0.4', port: silentPort }, { name: 'pm-c', address: '127.0.0.3', port: closedPort }], []);
    const started = Date.now();
    const run = await pmc('vm', 'ls', '--config', file);
    const seconds = (Date.now() - started) / 1000;
    assert.equal(run.code, 3);
    assert.match(run.err, /pm-s: .*2 ?s/);
    assert.match(run.err, /pm-c: connection refused/);
    // The header still prints: an empty cluster view, not a crash.
    assert.match(run.out, /^VM\s+NODE\s+PEER/);
    // The configured 2 s ended the wait: not at once, and not the 20 s ssh2 waits for a handshake by default (which
    // can only end later than 20 s); the 16 s between leave a loaded machine room.
    assert.ok(seconds >= 1.9 && seconds < 18, `took ${seconds}s`);
  });

  test('--verbose shows every remote command as it runs', async () => {
    const file = await config('verbose', [nodeA()], [knownHostsLine(a, 'ed25519')]);
    const run = await pmc('pm', 'ls', '--verbose', '--config', file);
    assert.equal(run.code, 0, run.err);
    assert.match(run.err, /\[pm-a\] \$ /);
    assert.match(run.err, /\[pm-a\] exit 0 in \d+ ms/);
  });
});
