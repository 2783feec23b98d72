import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDrbdadmVersion, parseProcDrbdVersionLine, versionFromCode } from '../../../src/probe/parsers/versions.js';
import { fixture, real } from './helpers.js';

test('real drbdadm --version: utils 9.22.0 driving an 8.4.11 kernel', () => {
  const { value, problems } = parseDrbdadmVersion(real('drbdadm-version.txt'));
  assert.deepEqual(problems, []);
  assert.deepEqual(value, { utilsVersion: '9.22.0', kernelVersion: '8.4.11' });
});

test('DRBD 9 drbdadm --version (hand-written) names the kernel version directly', () => {
  assert.deepEqual(parseDrbdadmVersion(fixture('drbd9/drbdadm-version.txt')).value, { utilsVersion: '9.27.0', kernelVersion: '9.2.8' });
});

test('no module loaded: code 0 means no kernel version; garbage is a problem', () => {
  assert.equal(parseDrbdadmVersion('DRBDADM_VERSION=9.22.0\nDRBD_KERNEL_VERSION_CODE=0x000000\n').value.kernelVersion, undefined);
  assert.match(parseDrbdadmVersion('drbdadm: unknown option').problems[0] ?? '', /no DRBDADM_VERSION/);
});

test('version codes and the /proc/drbd first line', () => {
  assert.equal(versionFromCode('0x08040b'), '8.4.11');
  assert.equal(versionFromCode('0x090208'), '9.2.8');
  assert.equal(versionFromCode('banana'), undefined);
  assert.equal(parseProcDrbdVersionLine(real('proc-drbd.connected-primary.txt').split('\n')[0]!), '8.4.11');
});
