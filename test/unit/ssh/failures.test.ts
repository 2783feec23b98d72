/**
 * The commands printed in host key hints are pasted into a shell by operators: they are run
 * here through a real sh, with hostile host names, users and paths, and with stand-ins for
 * ssh-keyscan, ssh-keygen and ssh that only record the arguments they get (the stand-in ssh
 * hands its command to `sh -c`, as sshd hands it to the user's shell on the jump host).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { hostKeyFailure, keyscanCommand } from '../../../src/ssh/failures.js';
import { KnownHostsIndex, type KnownHostEntry } from '../../../src/ssh/known-hosts.js';
import type { SshTarget } from '../../../src/ssh/types.js';

const dir = mkdtempSync(join(tmpdir(), 'pmc-hints-'));
const bin = join(dir, 'bin');
mkdirSync(bin);
const record = (name: string): string => `#!/bin/sh\nprintf '%s\\n' "${name}" "$@" "--end--" >> "$RECORD"\n`;
writeFileSync(join(bin, 'ssh-keyscan'), `${record('ssh-keyscan')}echo scanned-key-line\n`);
writeFileSync(join(bin, 'ssh-keygen'), record('ssh-keygen'));
// Options (-p takes a value), an optional `--`, the destination, then the command words,
// joined by spaces and run by a shell as sshd runs them.
writeFileSync(join(bin, 'ssh'), `${record('ssh')}while :; do case "$1" in -p) shift 2;; --) shift; break;; -*) shift;; *) break;; esac; done
shift; exec sh -c "$*"\n`);
for (const tool of ['ssh-keyscan', 'ssh-keygen', 'ssh']) chmodSync(join(bin, tool), 0o755);
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs a pasted command in `dir`; returns each recorded call as its argv. */
function paste(command: string): string[][] {
  const log = join(dir, `calls-${Math.random()}`);
  writeFileSync(log, '');
  execFileSync('sh', ['-c', command], { cwd: dir, env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, RECORD: log } });
  const words = readFileSync(log, 'utf8').split('\n');
  const calls: string[][] = [];
  let current: string[] = [];
  for (const word of words.slice(0, -1)) {
    if (word === '--end--') {
      calls.push(current);
      current = [];
    } else current.push(word);
  }
  return calls;
}

const hostile = {
  host: `h';touch pwned-1;'$(touch pwned-2)\`touch pwned-3\``,
  user: 'u$(touch pwned-4)',
  jumpHost: 'j;touch pwned-5',
  file: join(dir, `known hosts'$(touch pwned-6)`),
};

function target(overrides: Partial<SshTarget> = {}): SshTarget {
  return {
    name: 'pm-1', host: hostile.host, port: 2222, user: 'root', identityFiles: [], agentSocket: undefined,
    knownHostsFiles: [hostile.file], connectTimeoutMs: 1000, keepaliveIntervalMs: 1000, jump: undefined, sudo: false, ...overrides,
  };
}

function assertNothingInjected(): void {
  for (let i = 1; i <= 6; i++) assert.equal(existsSync(join(dir, `pwned-${i}`)), false, `pwned-${i} was created`);
}

const ed25519Blob = Buffer.from('AAAAC3NzaC1lZDI1NTE5AAAAIJdD9rCTCvhAmdKbLYrmXsxP1Aa0dmHGDiFdKUAJT2yB', 'base64');
const otherBlob = Buffer.from('AAAAC3NzaC1lZDI1NTE5AAAAIEHVUQz6sdm6nuavPa9NSm7tBKEC1ZHHYAX2t9H7D3b7', 'base64');

describe('host key hints are safe to paste', () => {
  test('ssh-keyscan from here: every value reaches the tool as one word, the output lands in the named file', () => {
    const calls = paste(keyscanCommand(target(), 'ssh-ed25519', undefined));
    assert.deepEqual(calls, [['ssh-keyscan', '-p', '2222', '-t', 'ed25519', '--', hostile.host]]);
    assert.equal(readFileSync(hostile.file, 'utf8'), 'scanned-key-line\n');
    assertNothingInjected();
  });

  test('ssh-keyscan through a jump host: quoted once for this shell and once more for the jump host\'s', () => {
    const via = target({ name: 'jump', host: hostile.jumpHost, port: 22, user: hostile.user });
    const calls = paste(keyscanCommand(target(), 'ssh-ed25519', via));
    assert.deepEqual(calls[0]!.slice(0, 5), ['ssh', '-p', '22', '--', `${hostile.user}@${hostile.jumpHost}`]);
    assert.deepEqual(calls[1], ['ssh-keyscan', '-p', '2222', '-t', 'ed25519', '--', hostile.host]);
    assertNothingInjected();
  });

  test('the changed-key remedy: ssh-keygen -R and ssh-keyscan get the names and file as given', () => {
    // Built by hand: a known_hosts line cannot hold a name with spaces, the hint must still be safe.
    const entries: KnownHostEntry[] = [{
      file: hostile.file, line: 3, marker: undefined, patterns: [`[${hostile.host}]:2222`], hashed: undefined, keyType: 'ssh-ed25519', keyBlob: otherBlob,
    }];
    const hostKeys = new KnownHostsIndex(entries).lookup([`[${hostile.host}]:2222`]);
    const error = hostKeyFailure(target(), { kind: 'changed', entries }, ed25519Blob, { via: undefined, hostKeys })!;
    const remedy = error.hint!.slice(error.hint!.indexOf('Only if you know why it changed: ') + 33).replace(', then ', ' && ');
    assert.deepEqual(paste(remedy), [
      ['ssh-keygen', '-R', `[${hostile.host}]:2222`, '-f', hostile.file],
      ['ssh-keyscan', '-p', '2222', '-t', 'ed25519', '--', hostile.host],
    ]);
    assertNothingInjected();
  });
});
