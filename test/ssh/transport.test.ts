/**
 * The SSH transport against real OpenSSH servers on loopback (see sshd.ts): node A on
 * 127.0.0.1, node B on 127.0.0.2, plus a port nobody listens on and a TCP listener that
 * never says a word, for the unreachable cases.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import ssh2 from 'ssh2';
import { PmcError } from '../../src/util/errors.js';
import { fingerprintSha256 } from '../../src/ssh/known-hosts.js';
import { SshPool, type SshPoolOptions } from '../../src/ssh/pool.js';
import type { SshTarget } from '../../src/ssh/types.js';
import { quote } from '../../src/util/shell.js';
import {
  freePort, generateKey, knownHostsLine, run, startAgent, startSshd, sshdSkip, tempDir, type KeyPair, type Sshd,
} from './sshd.js';

const execFileAsync = promisify(execFile);

describe('ssh transport', { skip: sshdSkip }, () => {
  let dir: string;
  let clientKey: KeyPair;
  let agentKey: KeyPair;
  let encryptedKey: KeyPair;
  let strangerKey: KeyPair;
  /** Client keys of the other types; the RSA one also in the old PEM format. */
  let otherKeys: KeyPair[];
  let authorizedKeys: string;
  let nodeA: Sshd;
  let nodeB: Sshd;
  /** A jump host that logs (DEBUG1) the forwards it opens; its sessions would get that log on stderr. */
  let jumpHost: Sshd;
  /** known_hosts with the ed25519 keys of A and B, as ssh-keyscan writes them. */
  let knownHosts: string;
  /** Where the stand-in sudo, first on node A's PATH, writes the arguments it got, one per line. */
  let sudoArgs: string;

  before(async () => {
    dir = await tempDir('transport');
    [clientKey, agentKey, encryptedKey, strangerKey] = await Promise.all([
      generateKey(dir, 'client'), generateKey(dir, 'agent-only'), generateKey(dir, 'encrypted', 'ed25519', 'secret'),
      generateKey(dir, 'stranger'),
    ]);
    otherKeys = await Promise.all([generateKey(dir, 'client-ecdsa', 'ecdsa'), generateKey(dir, 'client-rsa', 'rsa'), generateKey(dir, 'client-rsa-pem', 'rsa')]);
    await run('ssh-keygen', ['-q', '-p', '-m', 'PEM', '-N', '', '-P', '', '-f', otherKeys[2]!.privateFile]);
    authorizedKeys = join(dir, 'authorized_keys');
    await writeFile(authorizedKeys, [clientKey, agentKey, encryptedKey, ...otherKeys].map((k) => `${k.publicLine}\n`).join(''));
    // Node A's sessions find this sudo first, whether or not the machine has a real one: it
    // accepts only what pmc must send (-n --, then the command) and runs the rest as sudo would.
    const bin = join(dir, 'bin');
    sudoArgs = join(dir, 'sudo-args');
    await mkdir(bin);
    await writeFile(join(bin, 'sudo'), `#!/bin/sh\nprintf '%s\\n' "$@" > ${quote(sudoArgs)}\n`
      + `[ "$1" = -n ] && [ "$2" = -- ] || { echo "sudo: unexpected options" >&2; exit 1; }\nshift 2\nexec "$@"\n`, { mode: 0o755 });
    [nodeA, nodeB, jumpHost] = await Promise.all([
      startSshd({
        dir, host: '127.0.0.1', authorizedKeysFile: authorizedKeys, config: ['MaxSessions 10'],
        env: { PATH: `${bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin` },
      }),
      startSshd({ dir, host: '127.0.0.2', authorizedKeysFile: authorizedKeys, config: ['MaxSessions 10'] }),
      startSshd({ dir, host: '127.0.0.3', authorizedKeysFile: authorizedKeys, config: ['LogLevel DEBUG1'] }),
    ]);
    knownHosts = await knownHostsFile('known_hosts',
      [nodeA, nodeB, jumpHost].map((sshd) => `${knownHostsLine(sshd, 'ed25519')}\n`).join(''));
  });

  after(async () => {
    await Promise.all([nodeA?.stop(), nodeB?.stop(), jumpHost?.stop()]);
    await rm(dir, { recursive: true, force: true });
  });

  let fileCount = 0;
  async function knownHostsFile(name: string, text: string): Promise<string> {
    const file = join(dir, `${name}-${++fileCount}`);
    await writeFile(file, text);
    return file;
  }

  function target(name: string, sshd: { host: string; port: number }, overrides: Partial<SshTarget> = {}): SshTarget {
    return {
      name,
      host: sshd.host,
      port: sshd.port,
      user: 'root',
      identityFiles: [clientKey.privateFile],
      agentSocket: undefined,
      knownHostsFiles: [knownHosts],
      connectTimeoutMs: 5000,
      keepaliveIntervalMs: 10_000,
      jump: undefined,
      sudo: false,
      ...overrides,
    };
  }

  function pool(t: TestContext, targets: SshTarget[], options: SshPoolOptions = {}): SshPool {
    const p = new SshPool(targets, options);
    t.after(() => p.close());
    return p;
  }

  /** Counts the SSH logins sshd has logged, to see how many connections a test made. */
  function logins(sshd: Sshd): number {
    return sshd.log().match(/Accepted publickey for root/g)?.length ?? 0;
  }

  async function connectError(p: SshPool, node: string): Promise<PmcError> {
    const errors = await p.connectAll([node]);
    const error = errors.get(node);
    assert.ok(error instanceof PmcError, `expected ${node} to fail`);
    return error;
  }

  test('a command yields its exit code, output, duration and exact command line; failure is a value', async (t) => {
    const p = pool(t, [target('pm-a', nodeA)]);
    const command = `echo out; echo 'err' >&2; exit 3`;
    const result = await p.run('pm-a', command);
    assert.deepEqual({ ...result, durationMs: 0 }, {
      node: 'pm-a', command, exitCode: 3, signal: undefined, stdout: 'out\n', stderr: 'err\n', durationMs: 0, timedOut: false,
    });
    // The duration is the command's: at least what it slept, at most the wall time of the call (however loaded the machine).
    const started = performance.now();
    const slept = await p.run('pm-a', 'sleep 0.3');
    const wall = performance.now() - started;
    assert.ok(Number.isInteger(slept.durationMs) && slept.durationMs >= 300 && slept.durationMs <= Math.ceil(wall),
      `${slept.durationMs} ms, called for ${wall} ms`);
    assert.equal((await p.run('pm-a', 'true')).exitCode, 0);
  });

  test('stdin is sent and closed, even when large', async (t) => {
    const p = pool(t, [target('pm-a', nodeA)]);
    assert.equal((await p.run('pm-a', 'cat', { stdin: 'hello\n' })).stdout, 'hello\n');
    const big = Buffer.alloc(1024 * 1024, 'x');
    assert.equal((await p.run('pm-a', 'wc -c', { stdin: big })).stdout.trim(), String(big.length));
    // No stdin option: the command sees EOF at once instead of waiting.
    assert.equal((await p.run('pm-a', 'cat; echo done')).stdout, 'done\n');
  });

  test('stdin can be a stream: piped whole, cut short by the command, or failing to read', async (t) => {
    const p = pool(t, [target('pm-a', nodeA)]);
    const file = join(dir, 'input');
    await writeFile(file, Buffer.alloc(2 * 1024 * 1024, 'y'));
    assert.equal((await p.run('pm-a', 'wc -c', { stdin: createReadStream(file) })).stdout.trim(), String(2 * 1024 * 1024));
    const partial = await p.run('pm-a', 'head -c 3', { stdin: createReadStream(file) });
    assert.deepEqual([partial.exitCode, partial.stdout], [0, 'yyy']);
    // Fails before the command starts (the file is missing) or while it runs: the run fails.
    await assert.rejects(p.run('pm-a', 'cat >/dev/null', { stdin: createReadStream(join(dir, 'no_such_input')) }), {
      code: 'PMC_E_REMOTE',
      message: /^pm-a: could not send the input of the command: ENOENT/,
    });
    let chunks = 0;
    const failing = new Readable({
      read() {
        if (++chunks <= 3) this.push(Buffer.alloc(64 * 1024, 'z'));
        else this.destroy(new Error('disk on fire'));
      },
    });
    await assert.rejects(p.run('pm-a', 'cat >/dev/null', { stdin: failing }), {
      code: 'PMC_E_REMOTE',
      message: 'pm-a: could not send the input of the command: disk on fire',
    });
    assert.equal((await p.run('pm-a', 'true')).exitCode, 0, 'the connection is still fine');
  });

  test('20 commands at once share one connection, 10 channels at a time', async (t) => {
    const p = pool(t, [target('pm-a', nodeA)]);
    const before = logins(nodeA);
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => p.run('pm-a', `echo ${i}`)));
    assert.deepEqual(results.map((r) => [r.exitCode, r.stdout]), results.map((_, i) => [0, `${i}\n`]));
    assert.equal(logins(nodeA) - before, 1, 'one TCP connection / SSH login for the whole run');
  });

  test('without the channel cap the same 20 commands hit sshd MaxSessions 10', async (t) => {
    // The 20 channel opens leave in one burst, so sshd sees them all before any command ends.
    const p = pool(t, [target('pm-a', nodeA)], { maxSessions: 20 });
    const settled = await Promise.allSettled(Array.from({ length: 20 }, () => p.run('pm-a', 'true')));
    const refused = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
    assert.ok(refused.length > 0, 'sshd should refuse channels beyond MaxSessions');
    assert.ok(refused.every((r) => r.reason instanceof PmcError && r.reason.code === 'PMC_E_REMOTE'), String(refused[0]?.reason));
    assert.match(refused[0]!.reason.message, /^pm-a: the server refused a session channel/);
  });

  test('nodes run in parallel: each command waits until the other node\'s has started', async (t) => {
    const p = pool(t, [target('pm-a', nodeA), target('pm-b', nodeB)]);
    // A rendezvous, not a timing: run one after the other, the first would wait in vain (about 60 s) and fail.
    const started = (node: string) => quote(join(dir, `parallel-${node}`));
    const outcomes = await p.forEachNode(['pm-a', 'pm-b'], async (node) => {
      const other = node === 'pm-a' ? 'pm-b' : 'pm-a';
      return (await p.run(node, `touch ${started(node)}; i=0; until [ -e ${started(other)} ]; do `
        + `i=$((i + 1)); [ $i -le 600 ] || exit 1; sleep 0.1; done; echo met`)).stdout;
    });
    assert.deepEqual(outcomes.map((o) => [o.node, o.ok && o.value]), [['pm-a', 'met\n'], ['pm-b', 'met\n']]);
  });

  test('an unknown host key is refused, with its fingerprint and the command that trusts it', async (t) => {
    const file = join(dir, 'empty_known_hosts');
    const error = await connectError(pool(t, [target('pm-a', nodeA, { knownHostsFiles: [file] })]), 'pm-a');
    assert.equal(error.code, 'PMC_E_HOSTKEY_UNKNOWN');
    const fingerprint = (await run('ssh-keygen', ['-lf', nodeA.hostKeys.ed25519.publicFile])).split(' ')[1]!;
    assert.equal(error.message, `pm-a: host key of [127.0.0.1]:${nodeA.port} is not known (offered ssh-ed25519 ${fingerprint})`);
    const trust = `ssh-keyscan -p ${nodeA.port} -t ed25519 -- 127.0.0.1 >> ${file}`;
    assert.ok(error.hint?.endsWith(`then trust it: ${trust}`), error.hint);

    // Following the hint is enough to connect.
    await execFileAsync('sh', ['-c', trust]);
    assert.equal((await pool(t, [target('pm-a', nodeA, { knownHostsFiles: [file] })]).run('pm-a', 'echo ok')).stdout, 'ok\n');
  });

  test('a changed host key is refused loudly, naming the old entry', async (t) => {
    const impostor = await generateKey(dir, 'impostor-host-key');
    const file = await knownHostsFile('changed', `# old key\n[127.0.0.1]:${nodeA.port} ${impostor.publicLine}\n`);
    const error = await connectError(pool(t, [target('pm-a', nodeA, { knownHostsFiles: [file] })]), 'pm-a');
    assert.equal(error.code, 'PMC_E_HOSTKEY_CHANGED');
    assert.match(error.message, /^pm-a: REMOTE HOST IDENTIFICATION HAS CHANGED for \[127\.0\.0\.1\]:\d+: /);
    assert.ok(error.message.includes(`${file}:2 has a different ssh-ed25519 key`), error.message);
    assert.ok(error.details?.includes(fingerprintSha256(Buffer.from(impostor.publicLine.split(' ')[1]!, 'base64'))));

    // The remedy the hint gives, once the operator knows the change is legitimate, works.
    const remove = `ssh-keygen -R '[127.0.0.1]:${nodeA.port}' -f ${file}`;
    const trust = `ssh-keyscan -p ${nodeA.port} -t ed25519 -- 127.0.0.1 >> ${file}`;
    assert.ok(error.hint?.endsWith(`Only if you know why it changed: ${remove}, then ${trust}`), error.hint);
    await execFileAsync('sh', ['-c', `${remove} && ${trust}`]);
    assert.equal((await pool(t, [target('pm-a', nodeA, { knownHostsFiles: [file] })]).run('pm-a', 'true')).exitCode, 0);
  });

  test('a host key marked @revoked is refused even when also listed as trusted', async (t) => {
    const file = await knownHostsFile('revoked', `${knownHostsLine(nodeA, 'ed25519')}\n@revoked * ${nodeA.hostKeys.ed25519.publicLine}\n`);
    const error = await connectError(pool(t, [target('pm-a', nodeA, { knownHostsFiles: [file] })]), 'pm-a');
    assert.equal(error.code, 'PMC_E_HOSTKEY_CHANGED');
    assert.match(error.message, new RegExp(`^pm-a: host key of \\[127\\.0\\.0\\.1\\]:${nodeA.port} \\(ssh-ed25519 SHA256:.+\\) is marked @revoked in ${file}:2$`));
  });

  test('hashed known_hosts (ssh-keyscan -H) is accepted', async (t) => {
    const scanned = await run('ssh-keyscan', ['-H', '-p', String(nodeA.port), '-t', 'ed25519', '127.0.0.1']);
    assert.match(scanned, /^\|1\|/);
    const file = await knownHostsFile('hashed', scanned);
    assert.equal((await pool(t, [target('pm-a', nodeA, { knownHostsFiles: [file] })]).run('pm-a', 'echo ok')).exitCode, 0);
  });

  test('a host known only by its ecdsa key is verified with that key', async (t) => {
    const file = await knownHostsFile('ecdsa-only', `${knownHostsLine(nodeA, 'ecdsa')}\n`);
    assert.equal((await pool(t, [target('pm-a', nodeA, { knownHostsFiles: [file] })]).run('pm-a', 'true')).exitCode, 0);
  });

  test('an entry under the node name is accepted too (like HostKeyAlias)', async (t) => {
    const file = await knownHostsFile('by-name', `${knownHostsLine(nodeA, 'ed25519', 'pm-a')}\n`);
    assert.equal((await pool(t, [target('pm-a', nodeA, { knownHostsFiles: [file] })]).run('pm-a', 'true')).exitCode, 0);
  });

  test('unreachable nodes are outcomes beside the node that works, and are not retried', async (t) => {
    let silentConnections = 0;
    const silentSockets: Socket[] = [];
    const silent: Server = createServer((socket) => { silentConnections++; silentSockets.push(socket); });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    t.after(() => {
      silentSockets.forEach((s) => s.destroy());
      return new Promise<void>((resolve) => silent.close(() => resolve()));
    });
    const silentPort = (silent.address() as { port: number }).port;
    const closedPort = await freePort('127.0.0.1');
    const p = pool(t, [
      target('pm-a', nodeA),
      target('pm-refused', { host: '127.0.0.1', port: closedPort }),
      target('pm-silent', { host: '127.0.0.1', port: silentPort }, { connectTimeoutMs: 300 }),
    ]);

    const outcomes = await p.forEachNode(['pm-a', 'pm-refused', 'pm-silent'], (node) => p.run(node, 'hostname'));
    assert.deepEqual(outcomes.map((o) => (o.ok ? [o.node, 'ok'] : [o.node, o.error.code, o.error.message])), [
      ['pm-a', 'ok'],
      ['pm-refused', 'PMC_E_NODE_UNREACHABLE', `pm-refused: connection refused on 127.0.0.1:${closedPort}`],
      ['pm-silent', 'PMC_E_NODE_UNREACHABLE', `pm-silent: no answer from 127.0.0.1:${silentPort} within 0.3 s`],
    ]);
    // The failure is remembered for the run: no second attempt, same error.
    const again = await p.run('pm-silent', 'hostname').catch((err: unknown) => err);
    assert.equal(again, (outcomes[2] as { error: PmcError }).error);
    assert.equal(silentConnections, 1);
  });

  test('identity files of every key type authenticate (ed25519, ECDSA, RSA with SHA-2, RSA in PEM format)', async (t) => {
    for (const key of [clientKey, ...otherKeys]) {
      const p = pool(t, [target('pm-a', nodeA, { identityFiles: [key.privateFile] })]);
      assert.equal((await p.run('pm-a', 'true')).exitCode, 0, key.privateFile);
    }
  });

  test('an identity file is read once per run, however many nodes use it', async (t) => {
    const file = join(dir, 'read-once');
    await writeFile(file, await readFile(clientKey.privateFile), { mode: 0o600 });
    const p = pool(t, [target('pm-a', nodeA, { identityFiles: [file] }), target('pm-b', nodeB, { identityFiles: [file] })]);
    assert.equal((await p.run('pm-a', 'true')).exitCode, 0);
    await rm(file);
    assert.equal((await p.run('pm-b', 'true')).exitCode, 0);
    // A new run reads it afresh.
    const next = pool(t, [target('pm-b', nodeB, { identityFiles: [file] })]);
    assert.equal((await connectError(next, 'pm-b')).code, 'PMC_E_AUTH');
  });

  test('ssh-agent keys authenticate, including an encrypted key loaded into the agent', async (t) => {
    const agent = await startAgent(dir);
    t.after(() => agent.stop());
    await agent.add(agentKey.privateFile);
    await agent.add(encryptedKey.privateFile, 'secret');
    const p = pool(t, [
      target('pm-a', nodeA, { identityFiles: [], agentSocket: agent.socket }),
      target('pm-b', nodeB, { identityFiles: [encryptedKey.privateFile], agentSocket: agent.socket }),
    ]);
    assert.equal((await p.run('pm-a', 'true')).exitCode, 0);
    assert.equal((await p.run('pm-b', 'true')).exitCode, 0);
  });

  test('authentication failures say what was tried and what to do', async (t) => {
    const missing = join(dir, 'no_such_key');
    const deadAgent = join(dir, 'no_agent.sock');
    const p = pool(t, [
      target('pm-a', nodeA, { identityFiles: [missing, strangerKey.privateFile], agentSocket: deadAgent }),
      target('pm-b', nodeB, { identityFiles: [encryptedKey.privateFile] }),
      target('pm-c', nodeA, { identityFiles: [clientKey.privateFile], agentSocket: deadAgent }),
    ]);
    const wrongKey = await connectError(p, 'pm-a');
    assert.equal(wrongKey.code, 'PMC_E_AUTH');
    assert.equal(wrongKey.message, `root@pm-a: authentication failed (tried: agent (unusable), ${strangerKey.privateFile})`);
    assert.match(wrongKey.hint ?? '', /authorized_keys/);
    assert.equal(wrongKey.details, `agent ${deadAgent}: Failed to connect to agent\nskipped ${missing}: cannot read (ENOENT)`);

    // An agent that is not there does not stop the key files from working.
    assert.equal((await p.run('pm-c', 'true')).exitCode, 0);

    const encrypted = await connectError(p, 'pm-b');
    assert.equal(encrypted.code, 'PMC_E_AUTH');
    assert.equal(encrypted.message, 'root@pm-b: authentication failed (no agent and no usable identity file)');
    assert.match(encrypted.hint ?? '', /needs a passphrase .* ssh-add .*SSH_AUTH_SOCK/);
  });

  test('a jump host forwards to the node behind it, and is verified the same way', async (t) => {
    const jump = target('jump', jumpHost);
    const p = pool(t, [target('pm-b', nodeB, { jump }), target('pm-b2', nodeB, { jump })]);
    const [first, second] = await Promise.all([p.run('pm-b', 'echo $SSH_CONNECTION'), p.run('pm-b2', 'true')]);
    assert.match(first.stdout, new RegExp(` 127\\.0\\.0\\.2 ${nodeB.port}\\n$`));
    assert.equal(second.exitCode, 0);
    const forwards = jumpHost.log().match(new RegExp(`target 127\\.0\\.0\\.2 port ${nodeB.port}`, 'g')) ?? [];
    assert.equal(forwards.length, 2, 'both nodes went through the jump host');

    const unknownBehind = pool(t, [target('pm-b', nodeB, { jump, knownHostsFiles: [await knownHostsFile('only-jump', `${knownHostsLine(jumpHost, 'ed25519')}\n`)] })]);
    const error = await connectError(unknownBehind, 'pm-b');
    assert.equal(error.code, 'PMC_E_HOSTKEY_UNKNOWN');
    assert.ok(error.hint?.includes(`ssh -p ${jumpHost.port} -- root@127.0.0.3 'ssh-keyscan -p ${nodeB.port} -t ed25519 -- 127.0.0.2' >> `), error.hint);

    const unknownJump = pool(t, [target('pm-b', nodeB, { jump: target('jump', jumpHost, { knownHostsFiles: [join(dir, 'none')] }) })]);
    const jumpError = await connectError(unknownJump, 'pm-b');
    assert.equal(jumpError.code, 'PMC_E_HOSTKEY_UNKNOWN');
    assert.match(jumpError.message, /^pm-b: via jump host: jump: host key of \[127\.0\.0\.3\]:\d+ is not known/);
  });

  test('a jump host that cannot reach the node reports it', async (t) => {
    const closedPort = await freePort('127.0.0.2');
    const p = pool(t, [target('pm-b', { host: '127.0.0.2', port: closedPort }, { jump: target('jump', jumpHost) })]);
    const error = await connectError(p, 'pm-b');
    assert.equal(error.code, 'PMC_E_NODE_UNREACHABLE');
    assert.match(error.message, new RegExp(`^pm-b: jump host 127\\.0\\.0\\.3:${jumpHost.port} cannot reach 127\\.0\\.0\\.2:${closedPort}: `));
  });

  test('timeoutMs kills the remote command, not just the wait', async (t) => {
    const lines: string[] = [];
    const p = pool(t, [target('pm-a', nodeA)], { log: (line) => lines.push(line) });
    const command = 'sleep 97.31 & sleep 97.32; echo finished';
    const result = await p.run('pm-a', command, { timeoutMs: 300 });
    assert.deepEqual({ ...result, durationMs: 0 }, {
      node: 'pm-a', command, exitCode: 124, signal: undefined, stdout: '', stderr: '', durationMs: 0, timedOut: true,
    });
    // Cut at 300 ms: it ended far sooner than the 97 s its commands would have run, by a margin no load eats up.
    assert.ok(result.durationMs >= 300 && result.durationMs < 60_000, String(result.durationMs));
    assert.match(lines.at(-1)!, /^\[pm-a\] timed out after 300 ms, exit 124 in \d+ ms$/);
    // Gone already, the background one too: timeout signals the command's whole process group.
    assert.equal((await p.run('pm-a', `pgrep -f '[s]leep 97.3'`)).exitCode, 1);
    // A quick command with a timeout is not marked as timed out, even if it exits 124.
    assert.equal((await p.run('pm-a', 'exit 124', { timeoutMs: 60_000 })).timedOut, false);
  });

  test('a connection lost mid-run fails that node, and later commands fail fast', async (t) => {
    const p = pool(t, [target('pm-a', nodeA)]);
    assert.equal((await p.run('pm-a', 'true')).exitCode, 0);
    // $PPID is the sshd process serving this connection.
    const lost = await p.run('pm-a', 'kill -9 $PPID; sleep 5').catch((err: unknown) => err);
    assert.ok(lost instanceof PmcError && lost.code === 'PMC_E_NODE_UNREACHABLE', String(lost));
    assert.match(lost.message, new RegExp(`^pm-a: connection to 127\\.0\\.0\\.1:${nodeA.port} lost`));
    await assert.rejects(p.run('pm-a', 'true'), { code: 'PMC_E_NODE_UNREACHABLE' });
  });

  test('sudo wraps the command in sudo -n -- sh -c, and the result shows the command as given', async (t) => {
    const p = pool(t, [target('pm-a', nodeA, { sudo: true })]);
    const command = `echo "it's $(id -u)"`;
    const result = await p.run('pm-a', command);
    assert.equal(result.command, command);
    assert.deepEqual([result.exitCode, result.stdout, result.stderr], [0, "it's 0\n", '']);
    // What sudo got: no prompt, the end of its options, and the command whole, for sh -c.
    assert.deepEqual((await readFile(sudoArgs, 'utf8')).split('\n'), ['-n', '--', 'sh', '-c', command, '']);
  });

  test('the log hook shows commands and exits, never stdin', async (t) => {
    const lines: string[] = [];
    const p = pool(t, [target('pm-a', nodeA)], { log: (line) => lines.push(line) });
    await p.run('pm-a', 'cat >/dev/null; exit 2', { stdin: 'top-secret-stdin' });
    assert.match(lines[0]!, new RegExp(`^\\[pm-a\\] connected to root@127\\.0\\.0\\.1:${nodeA.port} in \\d+ ms$`));
    assert.equal(lines[1], '[pm-a] $ cat >/dev/null; exit 2');
    assert.match(lines[2]!, /^\[pm-a\] exit 2 in \d+ ms$/);
    assert.equal(lines.length, 3);
    assert.ok(!lines.join('\n').includes('top-secret'));
  });

  test('the phase hook reports each phase of a connection and a command, in order', async (t) => {
    const phases: string[] = [];
    const p = pool(t, [target('pm-a', nodeA)], {
      onPhase: (node, phase, startedAt, endedAt) => {
        assert.ok(endedAt >= startedAt, phase);
        phases.push(`${node} ${phase}`);
      },
    });
    await p.run('pm-a', 'echo one');
    await p.run('pm-a', 'echo two');
    assert.deepEqual(phases, ['tcp', 'hostkey', 'kex', 'auth', 'channel', 'transfer', 'channel', 'transfer'].map((phase) => `pm-a ${phase}`));
  });

  test('the server is not asked to prove the host keys it announces after login (pmc trusts known_hosts only)', async (t) => {
    const sshd = await startSshd({ dir, host: '127.0.0.4', authorizedKeysFile: authorizedKeys, config: ['LogLevel DEBUG1'] });
    t.after(() => sshd.stop());
    const known = await knownHostsFile('known_hosts', `${knownHostsLine(sshd, 'ed25519')}\n`);
    const p = new SshPool([target('pm-d', sshd, { knownHostsFiles: [known] })]);
    assert.equal((await p.run('pm-d', 'true')).exitCode, 0);
    await p.close();
    assert.match(sshd.log(), /Accepted publickey/);
    assert.doesNotMatch(sshd.log(), /hostkeys-prove-00@openssh\.com/);

    // What ssh2 does on its own, and sshd logs: the proof pmc has no use for.
    const client = new ssh2.Client();
    const proved = new Promise<void>((resolve, reject) => {
      client.on('hostkeys', () => resolve()).on('error', reject);
    });
    client.connect({ host: sshd.host, port: sshd.port, username: 'root', privateKey: await readFile(clientKey.privateFile), hostVerifier: () => true });
    await proved;
    // The event may come before ssh2's request reaches sshd's log: wait for it, and only then close.
    for (let i = 0; i < 100 && !/hostkeys-prove-00@openssh\.com/.test(sshd.log()); i++) await new Promise((r) => setTimeout(r, 100));
    client.end();
    assert.match(sshd.log(), /hostkeys-prove-00@openssh\.com/);
  });

  test('the handshake uses the algorithms pmc prefers (curve25519, AES-GCM), as sshd logs them', async (t) => {
    const p = pool(t, [target('jump', jumpHost)]);
    await p.run('jump', 'true');
    assert.match(jumpHost.log(), /kex: algorithm: curve25519-sha256\b/);
    assert.match(jumpHost.log(), /kex: client->server cipher: aes128-gcm@openssh\.com/);
  });
});
