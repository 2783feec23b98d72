// pmc pm add against a real OpenSSH server on loopback, up to the point where it would change
// anything: the host key recorded at first contact is the server's (the fingerprint ssh-keygen
// prints), a wrong --fingerprint or a key that contradicts known_hosts is refused, and without a
// terminal the refusal prints the command to run again; in every case nothing is written.
// (The rest of pm add runs pm init --fix, which would write to this machine's /root/.ssh: the lab test covers it.)
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { main } from '../../src/cli/main.js';
import { generateKey, run, sshdSkip, startSshd, tempDir, type KeyPair, type Sshd } from './sshd.js';

async function pmc(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (t) => { out += t; }, err: (t) => { err += t; } }, { ...process.env, NO_COLOR: '1' });
  return { code, out, err };
}

describe('pm add against real sshd', { skip: sshdSkip }, () => {
  let dir: string;
  let client: KeyPair;
  let sshd: Sshd;
  let configFile: string;
  let knownHosts: string;
  const CONFIG_TEXT = (port: number, known: string, identity: string) => [
    '# the cluster (this comment must survive)',
    'nodes:',
    '  - name: pm-1',
    '    address: 127.0.0.9',
    'ssh:',
    `  port: ${port}`,
    `  identityFiles: [${identity}]`,
    '  agent: false',
    `  knownHosts: ${known}`,
    '  connectTimeout: 2',
    '',
  ].join('\n');
  const KNOWN_TEXT = '[127.0.0.9]:22 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEXm5x4H0nLC3o0Q8R9ez6DhDNmGWkFRmSbd1bPNNGZb\n';

  before(async () => {
    dir = await tempDir('pm-add');
    client = await generateKey(dir, 'client');
    const authorizedKeys = join(dir, 'authorized_keys');
    await writeFile(authorizedKeys, `${client.publicLine}\n`);
    sshd = await startSshd({ dir, host: '127.0.0.4', authorizedKeysFile: authorizedKeys });
    configFile = join(dir, 'pmc.yaml');
    knownHosts = join(dir, 'known_hosts');
  });

  after(async () => {
    await sshd?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** Fresh files for each test; returns a check that both are unchanged. */
  async function freshFiles(known = KNOWN_TEXT): Promise<() => Promise<void>> {
    const config = CONFIG_TEXT(sshd.port, knownHosts, client.privateFile);
    await writeFile(configFile, config);
    await writeFile(knownHosts, known);
    return async () => {
      assert.equal(await readFile(configFile, 'utf8'), config);
      assert.equal(await readFile(knownHosts, 'utf8'), known);
    };
  }

  const fingerprintOf = async (pair: KeyPair) => (await run('ssh-keygen', ['-lf', pair.publicFile])).split(' ')[1]!;

  test('--dry-run shows the fingerprint ssh-keygen gives for the server\'s ed25519 key, and the line it would append', async () => {
    const unchanged = await freshFiles();
    const r = await pmc('pm', 'add', '--dry-run', '--json', '--config', configFile, 'pm-new', '--address', sshd.host);
    assert.equal(r.code, 0, r.err);
    const data = JSON.parse(r.out) as { fingerprint: string; keyType: string; knownHostsFile: string; knownHostsLine: string; mode: string };
    assert.equal(data.fingerprint, await fingerprintOf(sshd.hostKeys.ed25519));
    assert.equal(data.keyType, 'ssh-ed25519');
    assert.equal(data.knownHostsFile, knownHosts);
    const [type, base64] = sshd.hostKeys.ed25519.publicLine.split(' ');
    assert.equal(data.knownHostsLine, `[pm-new]:${sshd.port},[${sshd.host}]:${sshd.port} ${type} ${base64}`);
    assert.equal(data.mode, 'dry-run');
    await unchanged();
  });

  test('--dry-run for a person: the key, the line for known_hosts, what would follow', async () => {
    const unchanged = await freshFiles();
    const r = await pmc('pm', 'add', '--dry-run', '--config', configFile, 'pm-new', '--address', sshd.host);
    assert.equal(r.code, 0, r.err);
    const fingerprint = await fingerprintOf(sshd.hostKeys.ed25519);
    assert.deepEqual(r.out.split('\n').slice(0, 3), [
      'dry run, nothing changed:',
      `  pm-new (root@[${sshd.host}]:${sshd.port}): host key ssh-ed25519 ${fingerprint}`,
      `  would append to ${knownHosts}: [pm-new]:${sshd.port},[${sshd.host}]:${sshd.port} ${sshd.hostKeys.ed25519.publicLine.split(' ').slice(0, 2).join(' ')}`,
    ]);
    assert.match(r.out, /then add pm-new to .*pmc\.yaml/);
    await unchanged();
  });

  test('a --fingerprint of another key is refused, nothing written', async () => {
    const unchanged = await freshFiles();
    const r = await pmc('pm', 'add', '--config', configFile, 'pm-new', '--address', sshd.host, '--fingerprint', await fingerprintOf(sshd.hostKeys.ecdsa));
    assert.equal(r.code, 1);
    assert.match(r.err, /shows the host key ssh-ed25519 SHA256:\S+, not SHA256:\S+; nothing was written \[PMC_E_HOSTKEY_CHANGED\]/);
    await unchanged();
  });

  test('without a terminal and without --fingerprint: refused, the hint gives the fingerprint and the command to run', async () => {
    const unchanged = await freshFiles();
    const r = await pmc('pm', 'add', '--config', configFile, 'pm-new', '--address', sshd.host);
    assert.equal(r.code, 1);
    assert.match(r.err, /no terminal to confirm on \[PMC_E_CONFIRM\]/);
    const fingerprint = await fingerprintOf(sshd.hostKeys.ed25519);
    assert.ok(r.err.includes(`run: pmc pm add --config ${configFile} pm-new --address ${sshd.host} --fingerprint ${fingerprint}`), r.err);
    await unchanged();
  });

  test('a known_hosts line with another key for its address is refused as a changed identity', async () => {
    const [type, base64] = sshd.hostKeys.ecdsa.publicLine.split(' ');
    const ecdsaForEd = `[${sshd.host}]:${sshd.port} ssh-ed25519 ${KNOWN_TEXT.split(' ')[2]!.trim()}\n[${sshd.host}]:${sshd.port} ${type} ${base64}\n`;
    const unchanged = await freshFiles(ecdsaForEd);
    const r = await pmc('pm', 'add', '--config', configFile, 'pm-new', '--address', sshd.host, '--fingerprint', await fingerprintOf(sshd.hostKeys.ed25519));
    assert.equal(r.code, 1);
    assert.match(r.err, /REMOTE HOST IDENTIFICATION HAS CHANGED.*\[PMC_E_HOSTKEY_CHANGED\]/);
    await unchanged();
  });

  test('a name already listed is refused before any contact', async () => {
    const unchanged = await freshFiles();
    const r = await pmc('pm', 'add', '--config', configFile, 'pm-1', '--address', sshd.host);
    assert.equal(r.code, 2);
    assert.match(r.err, /node "pm-1" is already in .* \[PMC_E_USAGE\]/);
    await unchanged();
  });
});
