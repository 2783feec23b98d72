/**
 * Host key verification against real OpenSSH servers, case by case as OpenSSH's
 * StrictHostKeyChecking=yes decides: which host key algorithm is negotiated (read from the
 * server's own log), a server without the known key type, conflicting entries, unreadable
 * known_hosts, known_hosts read once per run, and `vm console`'s ssh options with awkward
 * known_hosts paths run through the real ssh client.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, rm, unlink, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { main } from '../../src/cli/main.js';
import { sshOptions } from '../../src/ops/vm/console.js';
import { SshPool } from '../../src/ssh/pool.js';
import type { SshTarget } from '../../src/ssh/types.js';
import { PmcError } from '../../src/util/errors.js';
import { generateKey, knownHostsLine, run, sshdSkip, startSshd, tempDir, type KeyPair, type Sshd } from './sshd.js';

const execFileAsync = promisify(execFile);

describe('host keys against real sshd', { skip: sshdSkip }, () => {
  let dir: string;
  let clientKey: KeyPair;
  /** ed25519, ECDSA and RSA host keys; logs (DEBUG1) the host key algorithm of each key exchange. */
  let full: Sshd;
  /** Has an ECDSA key pair but serves only its ed25519 key, like a node whose ECDSA key was removed. */
  let edOnly: Sshd;

  before(async () => {
    dir = await tempDir('host-keys');
    clientKey = await generateKey(dir, 'client');
    const authorizedKeys = join(dir, 'authorized_keys');
    await writeFile(authorizedKeys, `${clientKey.publicLine}\n`);
    [full, edOnly] = await Promise.all([
      startSshd({ dir, host: '127.0.0.1', authorizedKeysFile: authorizedKeys, rsa: true, config: ['LogLevel DEBUG1'] }),
      startSshd({ dir, host: '127.0.0.2', authorizedKeysFile: authorizedKeys, serve: ['ed25519'] }),
    ]);
  });

  after(async () => {
    await Promise.all([full?.stop(), edOnly?.stop()]);
    await rm(dir, { recursive: true, force: true });
  });

  let fileCount = 0;
  async function knownHostsFile(lines: string[]): Promise<string> {
    const file = join(dir, `known_hosts-${++fileCount}`);
    await writeFile(file, lines.map((l) => `${l}\n`).join(''));
    return file;
  }

  function target(name: string, sshd: Sshd, knownHostsFiles: string[], overrides: Partial<SshTarget> = {}): SshTarget {
    return {
      name, host: sshd.host, port: sshd.port, user: 'root', identityFiles: [clientKey.privateFile], agentSocket: undefined,
      knownHostsFiles, connectTimeoutMs: 5000, keepaliveIntervalMs: 10_000, jump: undefined, sudo: false, ...overrides,
    };
  }

  function pool(t: TestContext, targets: SshTarget[]): SshPool {
    const p = new SshPool(targets);
    t.after(() => p.close());
    return p;
  }

  async function connectError(p: SshPool, node: string): Promise<PmcError> {
    const error = (await p.connectAll([node])).get(node);
    assert.ok(error instanceof PmcError, `expected ${node} to be refused`);
    return error;
  }

  /**
   * Runs a command on the node and returns the host key algorithm the server logged for
   * that connection's key exchange (the log line can reach us just after the command's end).
   */
  async function negotiated(t: TestContext, knownHosts: string): Promise<string> {
    const before = full.log().length;
    assert.equal((await pool(t, [target('pm-a', full, [knownHosts])]).run('pm-a', 'true')).exitCode, 0);
    // Up to a minute: sshd wrote the line long before, only this loaded process may not have read it yet.
    for (let attempt = 0; attempt < 600; attempt++) {
      const match = /kex: host key algorithm: (\S+)/.exec(full.log().slice(before));
      if (match) return match[1]!;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.fail(`sshd logged no host key algorithm:\n${full.log().slice(before)}`);
  }

  test('ed25519 is negotiated when known_hosts lists RSA first, plain or hashed by ssh-keyscan -H', async (t) => {
    assert.equal(await negotiated(t, await knownHostsFile([knownHostsLine(full, 'rsa'), knownHostsLine(full, 'ed25519')])), 'ssh-ed25519');
    const scanned = (await run('ssh-keyscan', ['-H', '-p', String(full.port), '127.0.0.1'])).trim().split('\n');
    const rsaFirst = [...scanned.filter((l) => l.includes(' ssh-rsa ')), ...scanned.filter((l) => !l.includes(' ssh-rsa '))];
    assert.equal(rsaFirst.length, 3);
    assert.match(rsaFirst[0]!, /^\|1\|\S+ ssh-rsa /);
    assert.equal(await negotiated(t, await knownHostsFile(rsaFirst)), 'ssh-ed25519');
  });

  test('only the types known_hosts holds are offered: ECDSA, or RSA with SHA-512 signatures', async (t) => {
    assert.equal(await negotiated(t, await knownHostsFile([knownHostsLine(full, 'ecdsa')])), 'ecdsa-sha2-nistp256');
    assert.equal(await negotiated(t, await knownHostsFile([knownHostsLine(full, 'rsa')])), 'rsa-sha2-512');
  });

  test('a server without the key type known_hosts holds has CHANGED, it is not "unknown"', async (t) => {
    const file = await knownHostsFile(['# the node had an ECDSA key', knownHostsLine(edOnly, 'ecdsa')]);
    const error = await connectError(pool(t, [target('pm-b', edOnly, [file])]), 'pm-b');
    const name = `[127.0.0.2]:${edOnly.port}`;
    assert.equal(error.code, 'PMC_E_HOSTKEY_CHANGED');
    assert.equal(error.message,
      `pm-b: REMOTE HOST IDENTIFICATION HAS CHANGED for ${name}: it has no host key of the types known_hosts holds for it: ecdsa-sha2-nistp256 (${file}:2)`);
    assert.ok(error.hint?.endsWith(`Only if you know why it changed: ssh-keygen -R '${name}' -f ${file}, then ssh-keyscan -p ${edOnly.port} -- 127.0.0.2 >> ${file}`), error.hint);
    assert.doesNotMatch(`${error.message} ${error.hint}`, /not known/);
  });

  test('the right key under one name and a different key of its type under another refuse, naming both lines', async (t) => {
    const impostor = await generateKey(dir, 'impostor-host');
    const [type, key] = impostor.publicLine.split(' ');
    const byName = knownHostsLine(full, 'ed25519', 'pm-a');
    const byAddress = `[127.0.0.1]:${full.port}`;

    const file = await knownHostsFile([byName, `${byAddress} ${type} ${key}`]);
    const error = await connectError(pool(t, [target('pm-a', full, [file])]), 'pm-a');
    assert.equal(error.code, 'PMC_E_HOSTKEY_CHANGED');
    assert.match(error.message, new RegExp(`^pm-a: conflicting known_hosts entries: ${file}:1 has the offered ssh-ed25519 SHA256:\\S+ for \\[pm-a\\]:${full.port}, `
      + `${file}:2 has a different ssh-ed25519 key for \\[127\\.0\\.0\\.1\\]:${full.port}$`));

    // The same with the address trusted and the node name matched by a pattern.
    const patterned = await knownHostsFile([`[pm-*]:${full.port} ${type} ${key}`, knownHostsLine(full, 'ed25519')]);
    const reverse = await connectError(pool(t, [target('pm-a', full, [patterned])]), 'pm-a');
    assert.match(reverse.message, new RegExp(`${patterned}:2 has the offered .* for \\[127\\.0\\.0\\.1\\]:\\d+, ${patterned}:1 has a different ssh-ed25519 key for \\[pm-a\\]:\\d+$`));

    // Two keys under one name (a key being rotated) is not a conflict, for OpenSSH either.
    const rotated = await knownHostsFile([`${byAddress} ${type} ${key}`, knownHostsLine(full, 'ed25519')]);
    assert.equal((await pool(t, [target('pm-a', full, [rotated])]).run('pm-a', 'true')).exitCode, 0);
    await execFileAsync('ssh', ['-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${rotated}`,
      '-o', 'GlobalKnownHostsFile=/dev/null', '-i', clientKey.privateFile, '-p', String(full.port), 'root@127.0.0.1', 'true']);
  });

  test('an unreadable or directory known_hosts is refused with its cause, even when another file knows the host', async (t) => {
    const good = await knownHostsFile([knownHostsLine(full, 'ed25519')]);
    const asDirectory = join(dir, 'known_hosts.d');
    await mkdir(asDirectory);
    const isDir = await connectError(pool(t, [target('pm-a', full, [good, asDirectory])]), 'pm-a');
    assert.equal(isDir.code, 'PMC_E_HOSTKEY_UNKNOWN');
    assert.equal(isDir.message,
      `pm-a: cannot check the host key of [127.0.0.1]:${full.port}: known_hosts file ${asDirectory} cannot be read (EISDIR: it is a directory)`);

    // root reads any file whatever its mode; the kernel still refuses it a write-only sysctl.
    let unreadable = '/proc/sys/vm/compact_memory';
    if (process.getuid?.() !== 0) {
      unreadable = await knownHostsFile([knownHostsLine(full, 'ed25519')]);
      await chmod(unreadable, 0o000);
    }
    const denied = await connectError(pool(t, [target('pm-a', full, [unreadable, good])]), 'pm-a');
    assert.equal(denied.message,
      `pm-a: cannot check the host key of [127.0.0.1]:${full.port}: known_hosts file ${unreadable} cannot be read (EACCES: permission denied)`);

    // As the user sees it: the cause is on the one line pmc prints, no --verbose needed.
    const config = join(dir, 'pmc-unreadable.yaml');
    await writeFile(config, ['nodes:', `  - { name: pm-a, address: 127.0.0.1, ssh: { port: ${full.port} } }`, 'ssh:',
      `  identityFiles: [${clientKey.privateFile}]`, '  agent: false', `  knownHosts: [${good}, ${asDirectory}]`, ''].join('\n'));
    let err = '';
    const code = await main(['pm', 'ls', '--config', config], { out: () => undefined, err: (text) => { err += text; } }, { ...process.env, NO_COLOR: '1' });
    assert.equal(code, 3);
    assert.match(err, /pm-a: cannot check the host key of .*: known_hosts file .*known_hosts\.d cannot be read \(EISDIR: it is a directory\)/);
  });

  test('known_hosts is read once per run: nodes and jump hosts connecting later use what was read first', async (t) => {
    const file = await knownHostsFile([knownHostsLine(full, 'ed25519'), knownHostsLine(edOnly, 'ed25519')]);
    const jump = target('jump', full, [file]);
    const p = pool(t, [target('pm-a', full, [file]), target('pm-b', edOnly, [file], { jump })]);
    assert.equal((await p.run('pm-a', 'true')).exitCode, 0);
    await unlink(file);
    // The jump host and the node behind it are verified with the entries read for pm-a.
    assert.equal((await p.run('pm-b', 'true')).exitCode, 0);
    // A new run reads the file again, and now knows neither host: the check above could fail.
    assert.equal((await connectError(pool(t, [target('pm-a', full, [file])]), 'pm-a')).code, 'PMC_E_HOSTKEY_UNKNOWN');
  });

  test("vm console's ssh options work with known_hosts paths holding spaces, quotes and %, also through a jump host", async () => {
    const awkward = join(dir, `with space/it's "100%d"`);
    await mkdir(join(dir, 'with space'), { recursive: true });
    await writeFile(awkward, [knownHostsLine(full, 'ed25519'), knownHostsLine(edOnly, 'ed25519')].map((l) => `${l}\n`).join(''));
    const ssh = (t: SshTarget) => execFileAsync('ssh', ['-F', '/dev/null', '-o', 'BatchMode=yes', ...sshOptions(t), t.host, 'echo ok']);
    assert.equal((await ssh(target('pm-a', full, [join(dir, 'missing file'), awkward]))).stdout, 'ok\n');
    const jump = target('jump', full, [awkward]);
    assert.equal((await ssh(target('pm-b', edOnly, [awkward], { jump }))).stdout, 'ok\n');
    // And the strict check is real: without the entries, the same command is refused.
    await assert.rejects(ssh(target('pm-a', full, [join(dir, 'missing file')])), /Host key verification failed/);
  });
});
