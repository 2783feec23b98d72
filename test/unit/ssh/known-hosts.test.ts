/**
 * known_hosts parsing and matching, checked against OpenSSH itself: keys come from
 * ssh-keygen, hashed files from `ssh-keygen -H`, and which lines match a host name is
 * compared with what `ssh-keygen -F` finds in the same file.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rm, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import {
  entryMatches, fingerprintSha256, hostLookupName, knownKeyTypes, loadKnownHosts, parseKnownHosts, verifyHostKey,
  type KnownHostEntry,
} from '../../../src/ssh/known-hosts.js';
import { generateKey, run, tempDir, type KeyPair } from '../../ssh/sshd.js';

const execFileAsync = promisify(execFile);

/** The line numbers `ssh-keygen -F name` reports for `file` (none when it exits 1). */
async function linesSshKeygenFinds(file: string, name: string): Promise<number[]> {
  try {
    const { stdout } = await execFileAsync('ssh-keygen', ['-F', name, '-f', file]);
    return [...stdout.matchAll(/found: line (\d+)/g)].map((m) => Number(m[1]));
  } catch (err) {
    if ((err as { code?: number }).code === 1) return [];
    throw err;
  }
}

function linesWeMatch(entries: KnownHostEntry[], name: string): number[] {
  return entries.filter((e) => entryMatches(e, [name])).map((e) => e.line);
}

/** "type base64" of a .pub line, as it appears in known_hosts. */
function keyField(key: KeyPair): string {
  return key.publicLine.split(' ').slice(0, 2).join(' ');
}

function blob(key: KeyPair): Buffer {
  return Buffer.from(key.publicLine.split(' ')[1]!, 'base64');
}

describe('known_hosts', () => {
  let dir: string;
  let ed: KeyPair;
  let ecdsa: KeyPair;
  let otherEd: KeyPair;

  before(async () => {
    dir = await tempDir('known-hosts');
    [ed, ecdsa, otherEd] = await Promise.all([
      generateKey(dir, 'ed', 'ed25519'), generateKey(dir, 'ecdsa', 'ecdsa'), generateKey(dir, 'other-ed', 'ed25519'),
    ]);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('parses entries with their line numbers and skips comments, blanks and broken lines', () => {
    const text = [
      '# a comment',
      '',
      `pm-1,10.0.0.1 ${keyField(ed)} root@pm-1`,
      'pm-2 ssh-ed25519 not-base64!!',
      `pm-3 ssh-rsa ${keyField(ed).split(' ')[1]}`,
      `@revoked * ${keyField(ecdsa)}`,
      `@cert-authority *.lan ${keyField(ed)}`,
      `@bogus pm-4 ${keyField(ed)}`,
      `  [pm-5]:2222\t${keyField(ecdsa)}`,
    ].join('\n');
    const entries = parseKnownHosts(text, '/kh');
    assert.deepEqual(entries.map((e) => [e.line, e.marker, e.patterns, e.keyType]), [
      [3, undefined, ['pm-1', '10.0.0.1'], 'ssh-ed25519'],
      [6, 'revoked', ['*'], 'ecdsa-sha2-nistp256'],
      [7, 'cert-authority', ['*.lan'], 'ssh-ed25519'],
      [9, undefined, ['[pm-5]:2222'], 'ecdsa-sha2-nistp256'],
    ]);
    assert.ok(entries[0]!.keyBlob.equals(blob(ed)));
    assert.equal(entries[0]!.file, '/kh');
  });

  test('looks hosts on other ports up as [host]:port, like OpenSSH', () => {
    assert.equal(hostLookupName('pm-1', 22), 'pm-1');
    assert.equal(hostLookupName('10.0.0.1', 2222), '[10.0.0.1]:2222');
  });

  test('matches plain, port, wildcard, negated and mixed-case names exactly as ssh-keygen -F does', async () => {
    const file = join(dir, 'patterns');
    await writeFile(file, [
      `pm-1,10.0.0.1 ${keyField(ed)}`,
      `[pm-1]:2222 ${keyField(ecdsa)}`,
      `*.example.net,!bad.example.net ${keyField(ed)}`,
      `[10.0.0.?]:2222 ${keyField(ecdsa)}`,
      `Mixed.Case.Lan ${keyField(ed)}`,
      `@revoked bad.example.net ${keyField(otherEd)}`,
      `@cert-authority *.lan ${keyField(otherEd)}`,
      '',
    ].join('\n'));
    const entries = parseKnownHosts(await readFile(file, 'utf8'), file);
    const names = [
      'pm-1', '[pm-1]:2222', '[pm-1]:2223', '10.0.0.1', '[10.0.0.5]:2222', '[10.0.0.15]:2222', 'pm-2',
      'x.example.net', 'bad.example.net', 'example.net', 'mixed.case.lan', 'other.lan',
    ];
    for (const name of names) {
      assert.deepEqual(linesWeMatch(entries, name), await linesSshKeygenFinds(file, name), name);
    }
    // Sanity: the oracle really found things, so the comparison above is not vacuous.
    assert.deepEqual(await linesSshKeygenFinds(file, 'x.example.net'), [3]);
    assert.deepEqual(await linesSshKeygenFinds(file, 'bad.example.net'), [6]);
  });

  test('matches hashed entries written by ssh-keygen -H', async () => {
    const file = join(dir, 'hashed');
    await writeFile(file, `pm-1,10.0.0.1 ${keyField(ed)}\n[pm-1]:2222 ${keyField(ecdsa)}\n`);
    await run('ssh-keygen', ['-q', '-H', '-f', file]);
    const entries = parseKnownHosts(await readFile(file, 'utf8'), file);
    assert.equal(entries.length, 3);
    assert.ok(entries.every((e) => e.hashed !== undefined && e.patterns.length === 0));
    for (const name of ['pm-1', '10.0.0.1', '[pm-1]:2222', 'pm-2', '[pm-1]:22']) {
      assert.deepEqual(linesWeMatch(entries, name), await linesSshKeygenFinds(file, name), name);
    }
    // ssh lowercases the host name before hashing it (ssh-keygen -F does not), so do we.
    assert.deepEqual(linesWeMatch(entries, 'PM-1'), [1]);
    assert.deepEqual(verifyHostKey(entries, ['[pm-1]:2222'], blob(ecdsa)).kind, 'trusted');
    assert.deepEqual(verifyHostKey(entries, ['pm-1'], blob(ecdsa)).kind, 'unknown');
  });

  test('verdicts: trusted, unknown, changed, revoked; cert-authority lines never trust', () => {
    const text = [
      `pm-1 ${keyField(ed)}`,
      `pm-2 ${keyField(ecdsa)}`,
      `pm-3 ${keyField(otherEd)}`,
      `@revoked pm-3 ${keyField(otherEd)}`,
      `@cert-authority pm-4 ${keyField(ed)}`,
      `pm-5 ${keyField(otherEd)}`,
      `pm-5 ${keyField(ecdsa)}`,
    ].join('\n');
    const entries = parseKnownHosts(text, '/etc/pmc/known_hosts');

    const trusted = verifyHostKey(entries, ['pm-1'], blob(ed));
    assert.equal(trusted.kind, 'trusted');
    assert.equal(trusted.kind === 'trusted' && trusted.entry.line, 1);

    assert.deepEqual(verifyHostKey(entries, ['pm-9'], blob(ed)), { kind: 'unknown', knownTypes: [] });
    // Known only by ecdsa but offering ed25519: unknown, and the verdict says what is known.
    assert.deepEqual(verifyHostKey(entries, ['pm-2'], blob(ed)), { kind: 'unknown', knownTypes: ['ecdsa-sha2-nistp256'] });

    const changed = verifyHostKey(entries, ['pm-5'], blob(ed));
    assert.equal(changed.kind, 'changed');
    assert.deepEqual(changed.kind === 'changed' && changed.entries.map((e) => `${e.file}:${e.line}`), ['/etc/pmc/known_hosts:6']);

    const revoked = verifyHostKey(entries, ['pm-3'], blob(otherEd));
    assert.equal(revoked.kind, 'revoked');
    assert.equal(revoked.kind === 'revoked' && revoked.entry.line, 4);

    assert.equal(verifyHostKey(entries, ['pm-4'], blob(ed)).kind, 'unknown');
    // A second lookup name (the node's name) is enough to trust.
    assert.equal(verifyHostKey(entries, ['10.9.9.9', 'pm-1'], blob(ed)).kind, 'trusted');
  });

  test('lists the key types known for a host, for host key algorithm preference', () => {
    const entries = parseKnownHosts(`pm-1 ${keyField(ecdsa)}\npm-1 ${keyField(ed)}\n@revoked pm-1 ${keyField(otherEd)}\n`, '/kh');
    assert.deepEqual(knownKeyTypes(entries, ['pm-1']), ['ecdsa-sha2-nistp256', 'ssh-ed25519']);
    assert.deepEqual(knownKeyTypes(entries, ['pm-2']), []);
  });

  test('fingerprints match ssh-keygen -l', async () => {
    for (const key of [ed, ecdsa]) {
      const listed = await run('ssh-keygen', ['-l', '-E', 'sha256', '-f', key.publicFile]);
      assert.equal(fingerprintSha256(blob(key)), listed.split(' ')[1]);
    }
  });

  test('loads several files, noting the ones it cannot read', async () => {
    const file = join(dir, 'one');
    await writeFile(file, `pm-1 ${keyField(ed)}\n`);
    const { entries, notes } = await loadKnownHosts([join(dir, 'missing'), file, dir]);
    assert.deepEqual(entries.map((e) => `${e.file}:${e.line}`), [`${file}:1`]);
    assert.deepEqual(notes, [`${join(dir, 'missing')}: does not exist`, `${dir}: cannot read (EISDIR)`]);
  });
});
