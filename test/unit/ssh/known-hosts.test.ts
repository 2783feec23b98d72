/**
 * known_hosts parsing and matching, checked against OpenSSH itself: keys come from
 * ssh-keygen, hashed files from `ssh-keygen -H`, and which lines match a host name is
 * compared with what `ssh-keygen -F` finds in the same file.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { createHmac, randomBytes } from 'node:crypto';
import { hostKeyAlgorithms } from '../../../src/ssh/connection.js';
import { hashedEntryKey, hashedNameMatches, prepareName } from '../../../src/ssh/hashed-names.js';
import {
  checkServerKey, entryMatches, fingerprintSha256, hostLookupName, knownKeyTypes, KnownHostsIndex, KnownHostsStore, loadKnownHosts,
  parseKnownHosts, verifyHostKey, type KnownHostEntry,
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

/** The lines matching `name`, found both ways: by scanning every entry, and through the index. */
function linesWeMatch(entries: KnownHostEntry[], name: string): number[] {
  const scanned = entries.filter((e) => entryMatches(e, [name])).map((e) => e.line);
  assert.deepEqual(new KnownHostsIndex(entries).matching(name).map((e) => e.line), scanned, `index and scan agree on ${name}`);
  return scanned;
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

  test('the precomputed HMAC-SHA1 equals node:crypto on random salts and names, one or more blocks long', () => {
    for (let i = 0; i < 500; i++) {
      const salt = randomBytes(20);
      const name = `${randomBytes(i % 90).toString('base64').slice(0, i % 90)}.é`;
      const key = hashedEntryKey(salt, createHmac('sha1', salt).update(name).digest())!;
      assert.ok(hashedNameMatches(key, prepareName(name)), name);
      assert.ok(!hashedNameMatches(key, prepareName(`${name}x`)), name);
    }
  });

  test('the index looks each name up once and keeps the answer; hashed, literal and pattern entries in file order', () => {
    const plainAndHashed = [
      `|1|${Buffer.alloc(20, 1).toString('base64')}|${createHmac('sha1', Buffer.alloc(20, 1)).update('pm-1').digest('base64')} ${keyField(ecdsa)}`,
      `pm-*,!pm-2 ${keyField(otherEd)}`,
      `PM-1,10.0.0.1 ${keyField(ed)}`,
      `@cert-authority pm-1 ${keyField(ed)}`,
    ].join('\n');
    const index = new KnownHostsIndex(parseKnownHosts(plainAndHashed, '/kh'));
    const first = index.matching('pm-1');
    assert.deepEqual(first.map((e) => e.line), [1, 2, 3, 4]);
    assert.equal(index.matching('Pm-1'), first, 'the second lookup is the first answer');
    assert.deepEqual(index.matching('pm-2').map((e) => e.line), []);
    assert.deepEqual(index.lookup(['pm-1', '10.0.0.1']).byName.map((n) => [n.name, n.entries.map((e) => e.line)]),
      [['pm-1', [1, 2, 3]], ['10.0.0.1', [3]]]);
  });

  test('the key a server presents: OpenSSH StrictHostKeyChecking=yes verdicts', () => {
    const text = [
      `pm-1,10.0.0.1 ${keyField(ed)}`,
      `pm-2 ${keyField(ecdsa)}`,
      `pm-3 ${keyField(ed)}`,
      `10.0.0.3 ${keyField(otherEd)}`,
      `pm-4 ${keyField(otherEd)}`,
      `pm-4 ${keyField(ed)}`,
      `@revoked 10.0.0.5 ${keyField(ed)}`,
      `pm-5 ${keyField(ed)}`,
      `10.0.0.6 ${keyField(ecdsa)}`,
      `pm-6 ${keyField(ed)}`,
    ].join('\n');
    const index = new KnownHostsIndex(parseKnownHosts(text, '/kh'));
    const check = (names: string[], key: KeyPair) => checkServerKey(index.lookup(names), blob(key));
    const where = (entries: KnownHostEntry[]) => entries.map((e) => `${e.file}:${e.line}`);

    assert.deepEqual(check(['pm-1', '10.0.0.1'], ed), { kind: 'trusted', entry: index.entries[0] });
    assert.deepEqual(check(['pm-9'], ed), { kind: 'unknown' });
    const sameType = check(['pm-1'], otherEd);
    assert.deepEqual(sameType.kind === 'changed' && where(sameType.entries), ['/kh:1']);
    // Known only by ECDSA, offering ed25519: changed, as OpenSSH says, not unknown.
    const otherType = check(['pm-2'], ed);
    assert.deepEqual(otherType.kind === 'changed' && where(otherType.entries), ['/kh:2']);
    // The right key under the name, another ed25519 key under the address: conflict, both lines named.
    const conflict = check(['10.0.0.3', 'pm-3'], ed);
    assert.equal(conflict.kind, 'conflict');
    assert.deepEqual(conflict.kind === 'conflict' && [conflict.trusted.name, conflict.trusted.entry.line, conflict.others.map((o) => [o.name, o.entry.line])],
      ['pm-3', 3, [['10.0.0.3', 4]]]);
    // Two keys of a type under one name: a rotation, trusted.
    assert.equal(check(['pm-4'], ed).kind, 'trusted');
    // @revoked under any of the names wins.
    assert.deepEqual(check(['10.0.0.5', 'pm-5'], ed), { kind: 'revoked', entry: index.entries[6] });
    // Another name holding only another type is no conflict (the key may be the node's, of that type).
    assert.equal(check(['10.0.0.6', 'pm-6'], ed).kind, 'trusted');
  });

  test('same verdicts as the per-key check on every case where the host has no other name and no other key type', async () => {
    // verifyHostKey is the verdict pmc gave before (still used to audit node-to-node trust).
    const file = join(dir, 'same-verdicts');
    await writeFile(file, [
      `pm-1,10.0.0.1 ${keyField(ed)}`, `[pm-1]:2222 ${keyField(ecdsa)}`, `*.example.net,!bad.example.net ${keyField(ed)}`,
      `[10.0.0.?]:2222 ${keyField(ecdsa)}`, `@revoked bad.example.net ${keyField(otherEd)}`, `bad.example.net ${keyField(otherEd)}`,
      `pm-5 ${keyField(otherEd)}`, `pm-5 ${keyField(ed)}`, `pm-6 ${keyField(otherEd)}`, '',
    ].join('\n'));
    await run('ssh-keygen', ['-q', '-H', '-f', file]);
    const hashedText = await readFile(file, 'utf8');
    const plainText = (await readFile(`${file}.old`, 'utf8'));
    for (const text of [plainText, hashedText]) {
      const entries = parseKnownHosts(text, file);
      const index = new KnownHostsIndex(entries);
      for (const name of ['pm-1', '10.0.0.1', '[pm-1]:2222', '[10.0.0.5]:2222', 'x.example.net', 'bad.example.net', 'pm-5', 'pm-6', 'pm-9']) {
        for (const key of [ed, ecdsa, otherEd]) {
          const before = verifyHostKey(entries, [name], blob(key));
          const now = checkServerKey(index.lookup([name]), blob(key));
          if (before.kind === 'unknown' && before.knownTypes.length > 0) assert.equal(now.kind, 'changed', `${name} ${key.publicFile}`);
          else assert.equal(now.kind, before.kind, `${name} ${key.publicFile}`);
        }
      }
    }
  });

  test('host key algorithms: those of the known types, in OpenSSH order; all of them for a host known by none', () => {
    const lookup = (text: string) => new KnownHostsIndex(parseKnownHosts(text, '/kh')).lookup(['pm-1']);
    const rsa = `pm-1 ssh-rsa ${Buffer.concat([Buffer.from([0, 0, 0, 7]), Buffer.from('ssh-rsa'), Buffer.alloc(8)]).toString('base64')}`;
    const dss = rsa.replace(/ssh-rsa .*/, `ssh-dss ${Buffer.concat([Buffer.from([0, 0, 0, 7]), Buffer.from('ssh-dss'), Buffer.alloc(8)]).toString('base64')}`);
    assert.deepEqual(hostKeyAlgorithms(lookup(`${rsa}\npm-1 ${keyField(ed)}\n`)), ['ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
    assert.deepEqual(hostKeyAlgorithms(lookup(`pm-1 ${keyField(ecdsa)}\n`)), ['ecdsa-sha2-nistp256']);
    const all = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
    assert.deepEqual(hostKeyAlgorithms(lookup(`pm-2 ${keyField(ed)}\n@revoked pm-1 ${keyField(ed)}\n`)), all);
    // A type pmc cannot verify: every algorithm, and the key then shown is judged changed.
    assert.deepEqual(hostKeyAlgorithms(lookup(`${dss}\n`)), all);
  });

  test('a store reads each file once for the run, whichever lists it is part of', async () => {
    const a = join(dir, 'store-a');
    const b = join(dir, 'store-b');
    await writeFile(a, `pm-1 ${keyField(ed)}\n`);
    await writeFile(b, `pm-2 ${keyField(ecdsa)}\n`);
    const store = new KnownHostsStore();
    const first = await store.load([a]);
    await writeFile(a, `pm-1 ${keyField(otherEd)}\n`);
    assert.equal(await store.load([a]), first);
    const both = await store.load([a, b]);
    assert.equal(both.files[0], first.files[0], 'store-a read once');
    assert.deepEqual(both.index.matching('pm-1').map((e) => e.keyType), ['ssh-ed25519']);
    assert.equal((await new KnownHostsStore().load([a])).index.matching('pm-1')[0]!.keyBlob.equals(blob(otherEd)), true, 'a new run reads again');
    const sub = join(dir, 'store-dir');
    await mkdir(sub);
    assert.deepEqual((await store.load([sub, join(dir, 'store-missing')])).files.map((f) => f.error?.code), ['EISDIR', 'ENOENT']);
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
