import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseLvsJson, parseVgsJson } from '../../../src/probe/parsers/lvm.js';
import { real } from './helpers.js';

test('real vgs JSON: vg-pmc, 4 GiB with 3 GiB free, in bytes', () => {
  const { value, problems } = parseVgsJson(real('vgs-json.txt'), 'vg-pmc');
  assert.deepEqual(problems, []);
  assert.deepEqual(value, { name: 'vg-pmc', sizeBytes: 4290772992, freeBytes: 3217031168, extentSizeBytes: undefined });
});

test('real lvs JSON: test-vm, 1 GiB, active and open (DRBD holds it)', () => {
  const { value, problems } = parseLvsJson(real('lvs-json.txt'));
  assert.deepEqual(problems, []);
  assert.deepEqual(value, [{
    name: 'test-vm', vgName: 'vg-pmc', path: '/dev/vg-pmc/test-vm', sizeBytes: 1073741824,
    attr: '-wi-ao----', active: true, open: true, origin: undefined,
  }]);
});

test('extent size and the B suffix are understood', () => {
  const text = '{"report":[{"vg":[{"vg_name":"vg","vg_size":"8B","vg_free":"4B","vg_extent_size":"4194304B"}]}]}';
  assert.equal(parseVgsJson(text, 'vg').value?.extentSizeBytes, 4194304);
});

test('wrong VG, not JSON, wrong shape, unusable rows: problems, no crash', () => {
  assert.match(parseVgsJson(real('vgs-json.txt'), 'other').problems[0] ?? '', /other not in the report/);
  assert.match(parseVgsJson('  Volume group "x" not found', 'x').problems[0] ?? '', /not JSON/);
  assert.match(parseLvsJson('{"report":[{"lv":"nope"}]}').problems[0] ?? '', /unexpected JSON at report\.0\.lv/);
  assert.match(parseLvsJson('{"report":[{"lv":[{"lv_name":"a","vg_name":"vg","lv_size":1}]}]}').problems[0] ?? '', /unexpected JSON at report\.0\.lv\.0\.lv_size/);
  assert.match(parseVgsJson('{"report":[{"lv":[]}]}', 'vg').problems[0] ?? '', /unexpected JSON at report\.0\.vg/);
  const bad = parseLvsJson('{"report":[{"lv":[{"lv_name":"a","vg_name":"vg","lv_size":"1.00g"}]}]}');
  assert.deepEqual(bad.value, []);
  assert.match(bad.problems[0] ?? '', /byte size/);
});
