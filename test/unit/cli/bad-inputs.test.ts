/**
 * Drives the bad-input corpus (bad-inputs.ts) through the CLI's entry point. Every case must
 * end with one error line naming its PMC_E_ code (plus at most the hint line), the expected
 * exit code, nothing on stdout, no stack trace, and no connection to the node address: the
 * nodes of every configuration point at a listener on 127.0.0.1 that counts connections.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { main } from '../../../src/cli/main.js';
import { MAX_CONFIG_BYTES } from '../../../src/config/load.js';
import { BAD_INPUTS, BASE_CONFIG, type BadInput } from './bad-inputs.js';

const dir = mkdtempSync(join(tmpdir(), 'pmc-bad-inputs-'));
const connections: Socket[] = [];
const listener = createServer((socket) => { connections.push(socket); socket.destroy(); });
let port = 0;

before(async () => {
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  port = (listener.address() as AddressInfo).port;
});
after(() => {
  listener.close();
  rmSync(dir, { recursive: true, force: true });
});

const SPECIAL_FILES: Record<string, () => string> = {
  FIFO: () => {
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    return fifo;
  },
  DIRECTORY: () => {
    const d = join(dir, 'a-directory');
    mkdirSync(d);
    return d;
  },
  BIG: () => {
    const big = join(dir, 'big.yaml');
    writeFileSync(big, `${BASE_CONFIG.replace('PORT', String(port))}# ${'x'.repeat(MAX_CONFIG_BYTES)}\n`);
    return big;
  },
  MISSING: () => join(dir, 'missing.yaml'),
  '/dev/zero': () => '/dev/zero',
  '/dev/null': () => '/dev/null',
};

function configFile(c: BadInput, index: number): string {
  const special = SPECIAL_FILES[c.config ?? ''];
  if (special) return special();
  const file = join(dir, `case-${index}.yaml`);
  writeFileSync(file, (c.config ?? BASE_CONFIG).replaceAll('PORT', String(port)));
  return file;
}

async function pmc(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const log = console.log;
  // yargs prints help through console.log.
  console.log = (...parts: unknown[]) => { out += `${parts.join(' ')}\n`; };
  try {
    const code = await main(argv, { out: (t) => { out += t; }, err: (t) => { err += t; } }, { NO_COLOR: '1', HOME: '/nonexistent' });
    return { code, out, err };
  } finally {
    console.log = log;
  }
}

const label = (argv: string[]) => JSON.stringify(argv.join(' ')).slice(0, 110);

test(`the corpus holds at least 200 bad inputs (${BAD_INPUTS.length}), every reproduction of issue 9 among them`, () => {
  assert.ok(BAD_INPUTS.length >= 200);
  assert.ok(BAD_INPUTS.filter((c) => c.issue === 9).length >= 12);
});

BAD_INPUTS.forEach((c, index) => {
  test(`#${index} ${c.code} exit ${c.exit}: pmc ${label(c.argv)}${c.config && !c.config.includes('\n') ? ` (config ${c.config})` : ''}`, { timeout: 60_000 }, async () => {
    const config = configFile(c, index);
    const argv = c.argv.map((a) => (a === 'CONFIG' ? config : a));
    // Before a "--", after which it would be a positional argument.
    if (!c.argv.includes('--config')) argv.splice(argv.includes('--') ? argv.indexOf('--') : argv.length, 0, '--config', config);
    const before = connections.length;
    const run = await pmc(argv);
    const lines = run.err.split('\n').filter((l) => l !== '');
    assert.doesNotMatch(run.err, /internal error|\n\s+at /, 'no stack trace');
    assert.equal(lines.length <= 2, true, `one error line and its hint, got:\n${run.err}`);
    assert.match(lines[0] ?? '', new RegExp(`^pmc: error: .+ \\[${c.code}\\]$`));
    if (lines[1] !== undefined) assert.match(lines[1], /^ {2}hint: /);
    assert.equal(run.code, c.exit, run.err);
    assert.equal(run.out, '', 'nothing on stdout');
    assert.equal(connections.length, before, 'no connection to any node');
  });
});
