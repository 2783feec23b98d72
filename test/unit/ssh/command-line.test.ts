/** What run() sends for a command: as given, or wrapped for sudo and for a timeout. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { remoteCommandLine } from '../../../src/ssh/connection.js';

const execFileAsync = promisify(execFile);
const tricky = `printf '%s\\n' "it's" $((1+1)) 'a;b' | tr a-z A-Z`;

test('a plain command is sent exactly as given', () => {
  assert.equal(remoteCommandLine(tricky, false, undefined), tricky);
});

test('sudo and timeout wrap the command in sh -c, quoted', () => {
  assert.equal(remoteCommandLine('echo hi', true, undefined), `sudo -n -- sh -c 'echo hi'`);
  assert.equal(remoteCommandLine('echo hi', false, 300), `timeout -k 2 0.3 sh -c 'echo hi'`);
  assert.equal(remoteCommandLine('echo hi', true, 5000), `sudo -n -- timeout -k 2 5 sh -c 'echo hi'`);
});

test('the wrapped command line means the same to a shell as the command itself', async () => {
  const direct = await execFileAsync('sh', ['-c', tricky]);
  const wrapped = await execFileAsync('sh', ['-c', remoteCommandLine(tricky, false, 5000)]);
  assert.equal(wrapped.stdout, direct.stdout);
  assert.equal(direct.stdout, "IT'S\n2\nA;B\n");
});
