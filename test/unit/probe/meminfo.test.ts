import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMeminfo } from '../../../src/probe/parsers/meminfo.js';
import { real } from './helpers.js';

test('real /proc/meminfo: total and available in bytes', () => {
  const { value, problems } = parseMeminfo(real('proc-meminfo.txt'));
  assert.deepEqual(problems, []);
  assert.deepEqual(value, { totalBytes: 2027016 * 1024, availableBytes: 1724508 * 1024 });
});

test('old kernels without MemAvailable: free + buffers + cached', () => {
  const { value } = parseMeminfo('MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 10 kB\nCached: 1 kB\n');
  assert.deepEqual(value, { totalBytes: 1000 * 1024, availableBytes: 111 * 1024 });
});

test('no MemTotal: undefined and a problem', () => {
  const { value, problems } = parseMeminfo('');
  assert.equal(value, undefined);
  assert.match(problems[0] ?? '', /no MemTotal/);
});
