import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { main } from '../../../src/cli/main.js';
import { tempDirFor } from '../../temp-dir.js';

async function pmc(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const log = console.log;
  // yargs prints --help through console.log.
  console.log = (...parts: unknown[]) => { out += `${parts.join(' ')}\n`; };
  try {
    const code = await main(args, { out: (t) => { out += t; }, err: (t) => { err += t; } }, { NO_COLOR: '1', HOME: '/nonexistent' });
    return { code, out, err };
  } finally {
    console.log = log;
  }
}

test('--help lists the pm, vm and cluster groups', async () => {
  const run = await pmc('--help');
  assert.equal(run.code, 0);
  for (const group of ['pm', 'vm', 'cluster', 'completion']) assert.match(run.out, new RegExp(`pmc ${group}\\b`));
});

test('help for a command shows its options and examples', async () => {
  const run = await pmc('help', 'vm', 'ls');
  assert.match(run.out, /--output/);
  assert.match(run.out, /--no-headers|--headers/);
  assert.match(run.out, /Examples:/);
});

test('an unknown command is refused with a suggestion and exit 2', async () => {
  const run = await pmc('vm', 'lss');
  assert.equal(run.code, 2);
  assert.match(run.err, /^pmc: error: unknown command; did you mean "ls"\? \[PMC_E_USAGE\]\n  hint: /);
});

test('an unknown option is refused', async () => {
  const run = await pmc('pm', 'ls', '--bogus');
  assert.equal(run.code, 2);
  assert.match(run.err, /Unknown argument: bogus/);
});

test('a config with a misspelt key: one error per problem with its line, exit 1, no stack trace', async (t) => {
  const dir = tempDirFor(t, 'cli');
  const file = join(dir, 'pmc.yaml');
  writeFileSync(file, 'nodes:\n  - name: pm-1\nnetwork:\n  bridg: br0\n');
  const run = await pmc('pm', 'ls', '--config', file);
  assert.equal(run.code, 1);
  assert.equal(run.err.split('\n')[0], `pmc: error: ${file}:4:3: network.bridg: unknown key "bridg" (allowed: bridge, macPrefix, macFromIp, macByte4) [PMC_E_CONFIG_INVALID]`);
  assert.doesNotMatch(run.err, /\n\s+at /);
});

test('no config anywhere: says where it looked and how to start', async () => {
  const run = await pmc('vm', 'ls', '--config', '/nonexistent/pmc.yaml');
  assert.equal(run.code, 1);
  assert.match(run.err, /\/nonexistent\/pmc\.yaml \(from --config\) does not exist \[PMC_E_CONFIG_NOT_FOUND\]/);
  assert.match(run.err, /hint: copy .*etc\/pmc\.yaml/);
});

test('completion prints a shell script', async () => {
  const run = await pmc('completion');
  assert.match(run.out, /complete|compdef/);
});

test('--wait-lock takes whole seconds from 0 to a day; anything else is refused before the config is read', async () => {
  for (const bad of ['-1', '1.5', '1e99', 'abc']) {
    const run = await pmc(`--wait-lock=${bad}`, 'vm', 'stop', 'web-1', '--config', '/nonexistent/pmc.yaml');
    assert.equal(run.code, 2, `${bad}: ${run.err}`);
    assert.match(run.err, /^pmc: error: --wait-lock \S+: give whole seconds from 0 to 86400 \[PMC_E_USAGE\]\n/, bad);
  }
  const ok = await pmc('--wait-lock', '600', 'vm', 'stop', 'web-1', '--config', '/nonexistent/pmc.yaml');
  assert.match(ok.err, /PMC_E_CONFIG_NOT_FOUND/);
});

test('pmc log is a command of its own; a --since journalctl would not take is refused before any node is asked', async (t) => {
  const run = await pmc('help', 'log');
  assert.match(run.out, /pmc log \[vm\]/);
  assert.match(run.out, /--since/);
  const file = join(tempDirFor(t, 'cli-log'), 'pmc.yaml');
  // A node nobody answers on: had pmc tried it, the error would be an unreachable node, not a usage error.
  writeFileSync(file, 'nodes:\n  - name: pm-1\n    address: 192.0.2.1\nssh:\n  connectTimeout: 1\n');
  const bad = await pmc('log', '--since', 'today; reboot', '--config', file);
  assert.equal(bad.code, 2, bad.err);
  assert.match(bad.err, /^pmc: error: --since "today; reboot": not a time journalctl understands \[PMC_E_USAGE\]\n/);
});
