import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitSections } from '../../../src/probe/sections.js';
import { frame } from './helpers.js';

test('bodies come back byte for byte, with or without a final newline', () => {
  const out = frame('a', 'one\ntwo\n') + frame('b', 'no newline') + frame('c', '') + frame('d', '\n\n');
  const { sections, problems } = splitSections(out);
  assert.deepEqual(problems, []);
  assert.equal(sections.get('a')?.stdout, 'one\ntwo\n');
  assert.equal(sections.get('b')?.stdout, 'no newline');
  assert.equal(sections.get('c')?.stdout, '');
  assert.equal(sections.get('d')?.stdout, '\n\n');
});

test('stderr and exit code are kept apart from stdout', () => {
  const { sections } = splitSections(frame('vgs', '{}\n', 5, '  Volume group "vg-pmc" not found\n'));
  assert.deepEqual(sections.get('vgs'), {
    name: 'vgs', stdout: '{}\n', stderr: '  Volume group "vg-pmc" not found\n', exitCode: 5,
  });
});

test('output that looks like a marker cannot end a section early', () => {
  const body = '<description>\n@@PMC@@ end domain-xml:x 0\n@-already escaped\n@@PMC@@ begin evil\n</description>\n';
  const { sections, problems } = splitSections(frame('domain-xml:x', body) + frame('after', 'ok\n'));
  assert.deepEqual(problems, []);
  assert.equal(sections.get('domain-xml:x')?.stdout, body);
  assert.equal(sections.get('after')?.stdout, 'ok\n');
  assert.equal(sections.has('evil'), false);
});

test('names with spaces (libvirt domains) survive the end marker', () => {
  const { sections } = splitSections(frame('domain-state:web 1', 'running (booted)\n', 0));
  assert.equal(sections.get('domain-state:web 1')?.exitCode, 0);
});

test('truncated output keeps every section up to the cut, the last without exit code', () => {
  const full = frame('hostname', 'pm-2\n') + frame('meminfo', 'MemTotal: 1 kB\nMemAvailable: 1 kB\n');
  const { sections } = splitSections(full.slice(0, full.indexOf('MemAvailable')));
  assert.equal(sections.get('hostname')?.stdout, 'pm-2\n');
  assert.equal(sections.get('meminfo')?.exitCode, undefined);
  assert.equal(sections.get('meminfo')?.stdout, 'MemTotal: 1 kB\n');
});

test('text outside sections is reported, not mixed into a section', () => {
  const { sections, problems } = splitSections(`Welcome to pm-1\n${frame('hostname', 'pm-1\n')}`);
  assert.equal(sections.get('hostname')?.stdout, 'pm-1\n');
  assert.match(problems.join('\n'), /1 line\(s\) outside any section/);
});

test('empty output is no sections and no crash', () => {
  assert.equal(splitSections('').sections.size, 0);
});
