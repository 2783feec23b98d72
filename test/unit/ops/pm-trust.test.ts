import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { createHmac } from 'node:crypto';
import { parseKnownHosts } from '../../../src/ssh/known-hosts.js';
import {
  analyzeTrust, appendMissingLines, parsePublicKeys, type TrustFacts, type TrustNode,
} from '../../../src/ops/pm/ssh-trust.js';
import { tempDirFor } from '../../temp-dir.js';
import { fakeKey, keyLine as line } from './ssh-keys.js';

const HOST = { 'pm-1': fakeKey(1), 'pm-2': fakeKey(2), 'pm-3': fakeKey(3) } as const;
const ROOT = { 'pm-1': fakeKey(11), 'pm-2': fakeKey(12), 'pm-3': fakeKey(13) } as const;
const ADDRESS = { 'pm-1': '10.99.0.11', 'pm-2': '10.99.0.12', 'pm-3': '10.99.0.13' } as const;
type Name = keyof typeof HOST;

function trustNode(name: Name, facts: Partial<TrustFacts> & { knownHostsText?: string } = {}): TrustNode {
  const { knownHostsText = '', ...rest } = facts;
  return {
    name,
    hosts: [name, ADDRESS[name]],
    port: 22,
    facts: {
      hostKeys: [HOST[name]],
      rootKeys: [{ file: '/root/.ssh/id_ed25519', key: ROOT[name] }],
      authorizedKeys: [],
      knownHosts: parseKnownHosts(knownHostsText, '/root/.ssh/known_hosts'),
      ...rest,
    },
  };
}

test('parsePublicKeys: plain lines, authorized_keys options and comments; junk skipped', () => {
  const k = fakeKey(7);
  const text = [
    `${line(k)} root@pm-1`,
    `command="echo hi",no-pty ${line(fakeKey(8))}`,
    '# ssh-ed25519 AAAA commented out',
    'ssh-ed25519 not-base64!',
    'ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIFS80jlTAgamd4swl+QzCLAgB8RosoKpwLVUb9gfNLm1',
    '',
  ].join('\n');
  assert.deepEqual(parsePublicKeys(text), [k, fakeKey(8)]);
});

test('three nodes: trusted, missing key pair, unknown host and unauthorized key each get exactly their steps', () => {
  // pm-1 knows everyone and is authorized everywhere; pm-2 has no key pair; pm-3 knows nobody.
  const everyone = (['pm-1', 'pm-2', 'pm-3'] as Name[]).map((n) => `${n},${ADDRESS[n]} ${line(HOST[n])}`).join('\n');
  const pm1 = trustNode('pm-1', { knownHostsText: everyone, authorizedKeys: [ROOT['pm-3']] });
  const pm2 = trustNode('pm-2', { knownHostsText: everyone, rootKeys: [], authorizedKeys: [ROOT['pm-1']] });
  const pm3 = trustNode('pm-3', { authorizedKeys: [ROOT['pm-1']] });

  const ok = analyzeTrust(pm1, pm2);
  assert.equal(ok.authorized, true);
  assert.deepEqual(ok.unknownHosts, []);
  assert.deepEqual(ok.steps, []);
  assert.deepEqual(ok.proofs, [
    'ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o UpdateHostKeys=no -o ConnectTimeout=10 pm-2 true',
    'ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o UpdateHostKeys=no -o ConnectTimeout=10 10.99.0.12 true',
  ]);

  const noKey = analyzeTrust(pm2, pm1);
  assert.equal(noKey.keyMissing, true);
  assert.equal(noKey.authorized, false);
  assert.deepEqual(noKey.steps.map((s) => s.node), ['pm-2', 'pm-1']);
  assert.match(noKey.steps[0]!.command, /ssh-keygen -q -t ed25519 -N '' -C root@pm-2 -f \/root\/.ssh\/id_ed25519/);
  assert.deepEqual(noKey.steps[1]!.input, { fromNode: 'pm-2', command: 'cat /root/.ssh/id_ed25519.pub' });
  assert.match(noKey.steps[1]!.command, /while IFS= read -r line/);
  assert.match(noKey.steps[1]!.command, /\/root\/.ssh\/authorized_keys/);

  const unknown = analyzeTrust(pm3, pm1);
  assert.equal(unknown.authorized, true, 'pm-3 is in pm-1\'s authorized_keys');
  assert.deepEqual(unknown.unknownHosts, ['pm-1', '10.99.0.11']);
  assert.equal(unknown.steps.length, 1);
  assert.equal(unknown.steps[0]!.node, 'pm-3');
  assert.ok(unknown.steps[0]!.command.includes(`'pm-1,10.99.0.11 ssh-ed25519 ${HOST['pm-1'].base64}'`), unknown.steps[0]!.command);

  const both = analyzeTrust(pm3, pm2);
  assert.equal(both.authorized, false);
  assert.deepEqual(both.steps.map((s) => s.node), ['pm-2', 'pm-3'], 'authorize on pm-2, then known_hosts on pm-3');
});

test('a host known only by name gets its address added, and a hashed entry counts as known', () => {
  const byName = trustNode('pm-1', { knownHostsText: `pm-2 ${line(HOST['pm-2'])}` });
  assert.deepEqual(analyzeTrust(byName, trustNode('pm-2', { authorizedKeys: [ROOT['pm-1']] })).unknownHosts, ['10.99.0.12']);

  const salt = Buffer.alloc(20, 5);
  const hashed = (name: string) => `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
  const hashedNode = trustNode('pm-1', { knownHostsText: [`${hashed('pm-2')} ${line(HOST['pm-2'])}`, `${hashed('10.99.0.12')} ${line(HOST['pm-2'])}`].join('\n') });
  assert.deepEqual(analyzeTrust(hashedNode, trustNode('pm-2', { authorizedKeys: [ROOT['pm-1']] })).unknownHosts, []);
});

test('a different key already known for a host is a conflict: never replaced, nothing appended for that name', () => {
  const from = trustNode('pm-1', { knownHostsText: `# old\npm-2 ${line(fakeKey(99))}` });
  const pair = analyzeTrust(from, trustNode('pm-2', { authorizedKeys: [ROOT['pm-1']] }));
  assert.deepEqual(pair.conflicts, [{ host: 'pm-2', lines: ['/root/.ssh/known_hosts:2'] }]);
  assert.deepEqual(pair.unknownHosts, ['10.99.0.12'], 'the address alone may still be added');
  assert.ok(!pair.steps[0]!.command.includes("'pm-2,"), 'pm-2 itself is not written');
});

test('a non-standard SSH port is looked up and written as [host]:port', () => {
  const to = { ...trustNode('pm-2', { authorizedKeys: [ROOT['pm-1']] }), port: 2222 };
  const pair = analyzeTrust(trustNode('pm-1'), to);
  assert.deepEqual(pair.unknownHosts, ['[pm-2]:2222', '[10.99.0.12]:2222']);
  assert.match(pair.proofs[0]!, / -p 2222 pm-2 true$/);
});

test('appendMissingLines appends once, repairs a missing final newline, and keeps hostile data inert', (t) => {
  const dir = tempDirFor(t, 'append');
  const file = join(dir, 'sub', 'known_hosts');
  const hostile = `pm-2 ssh-ed25519 AAAA'; touch ${dir}/owned; echo '$(touch ${dir}/owned2)`;
  const run = (command: string, input = '') => execFileSync('sh', ['-c', command], { input });

  run(appendMissingLines(file, { lines: ['a 1', hostile] }));
  run(appendMissingLines(file, { lines: ['a 1', hostile] }));
  assert.equal(readFileSync(file, 'utf8'), `a 1\n${hostile}\n`);

  writeFileSync(file, 'no newline at the end');
  run(appendMissingLines(file, 'stdin'), 'b 2\n\nb 2\n');
  assert.equal(readFileSync(file, 'utf8'), 'no newline at the end\nb 2\n');
  assert.throws(() => readFileSync(join(dir, 'owned')));
  assert.throws(() => readFileSync(join(dir, 'owned2')));
});
