import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeStyle, plainStyle } from '../../../src/render/style.js';

test('colour on a terminal: the 16-colour codes, closed before and reopened after each line break', async () => {
  const style = await makeStyle(true);
  assert.equal(style.enabled, true);
  assert.equal(style.ok('done'), '\u001b[32mdone\u001b[39m');
  assert.equal(style.warn('late'), '\u001b[33mlate\u001b[39m');
  assert.equal(style.bad('failed'), '\u001b[31mfailed\u001b[39m');
  assert.equal(style.dim('$ virsh list'), '\u001b[2m$ virsh list\u001b[22m');
  assert.equal(style.bold('web-1'), '\u001b[1mweb-1\u001b[22m');
  assert.equal(style.bad('a\nb'), '\u001b[31ma\u001b[39m\n\u001b[31mb\u001b[39m');
  assert.equal(style.ok(''), '');
});

test('no colour: text passes unchanged', async () => {
  const style = await makeStyle(false);
  assert.equal(style, plainStyle);
  assert.equal(style.enabled, false);
  for (const paint of [style.ok, style.warn, style.bad, style.dim, style.bold]) assert.equal(paint('vm ls\n'), 'vm ls\n');
});
