import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseProbeOutput } from '../../../src/probe/gather.js';
import { parseLvsJson, parseVgsJson } from '../../../src/probe/parsers/lvm.js';
import { splitSections } from '../../../src/probe/sections.js';
import type { ProbeOptions } from '../../../src/probe/types.js';
import { real } from './helpers.js';

const OPTS: ProbeOptions = { volumeGroup: 'vg-pmc', bridge: 'br0', backupDir: '/pmc-vm-backup' };

/**
 * The lab's pm-1 with three defined domains (one name with a space, one with a quote), probed
 * by the old script (one virsh per command, vgs and lvs) and right after by the new one (virsh
 * sessions, lvm fullreport): see test/fixtures/real/README.md.
 */
test('the real old and new probe of the same node give the same NodeFacts', () => {
  const oldOutput = real('probe.old.pm-1.txt');
  const old = parseProbeOutput(oldOutput, OPTS);
  const now = parseProbeOutput(real('probe.new.pm-1.txt'), OPTS);

  assert.deepEqual(now.problems, []);
  assert.deepEqual(now.domains.filter((d) => d.name.startsWith('pr-cap')).map((d) => [d.name, d.state, d.memoryBytes, d.disks[0]?.source]), [
    ['pr-cap 2', 'shut off', 64 * 1024 * 1024, '/dev/vg-pmc/pr-cap'],
    ["pr-cap'3", 'shut off', 64 * 1024 * 1024, '/dev/vg-pmc/pr-cap'],
    ['pr-cap-1', 'shut off', 64 * 1024 * 1024, '/dev/vg-pmc/pr-cap'],
  ]);
  assert.ok(now.lvs.some((lv) => lv.name === 'pr-cap' && lv.sizeBytes === 8 * 1024 * 1024));

  // The old script's separate vgs and lvs reports, read with the same parsers.
  const sections = splitSections(oldOutput).sections;
  assert.deepEqual(now.vg, parseVgsJson(sections.get('vgs')!.stdout, OPTS.volumeGroup).value);
  assert.deepEqual(now.lvs, parseLvsJson(sections.get('lvs')!.stdout).value);
  const { vg: _oldVg, lvs: _oldLvs, problems: oldProblems, memory: oldMemory, ...oldRest } = old;
  const { vg: _vg, lvs: _lvs, problems: _problems, memory, ...nowRest } = now;
  assert.deepEqual(oldProblems, ['lvm: missing from the probe output']);
  // MemAvailable moved between the two runs; everything else is the same.
  assert.equal(memory?.totalBytes, oldMemory?.totalBytes);
  assert.deepEqual(nowRest, oldRest);
});
