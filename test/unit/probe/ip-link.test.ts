import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIpLinkJson } from '../../../src/probe/parsers/ip-link.js';

// Hand-written in the format of iproute2's `ip -j -d link show dev br0` (no real capture).
const BRIDGE_UP = JSON.stringify([{
  ifindex: 3, ifname: 'br0', flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'], mtu: 1500, qdisc: 'noqueue',
  operstate: 'UP', linkmode: 'DEFAULT', group: 'default', link_type: 'ether', address: '52:54:00:12:34:01',
  linkinfo: { info_kind: 'bridge', info_data: { stp_state: 0 } },
}]);

test('an up bridge with carrier', () => {
  assert.deepEqual(parseIpLinkJson(BRIDGE_UP, 'br0'), {
    value: { present: true, isBridge: true, up: true, carrier: true, operState: 'UP' }, problems: [],
  });
});

test('a plain NIC named like the bridge, administratively down', () => {
  const nic = JSON.stringify([{ ifname: 'br0', flags: ['BROADCAST', 'MULTICAST'], operstate: 'DOWN' }]);
  assert.deepEqual(parseIpLinkJson(nic, 'br0').value, { present: true, isBridge: false, up: false, carrier: false, operState: 'DOWN' });
});

test('absent, and garbage', () => {
  assert.equal(parseIpLinkJson('[]', 'br0').value.present, false);
  assert.match(parseIpLinkJson('Device "br0" does not exist.', 'br0').problems[0] ?? '', /not JSON/);
  assert.match(parseIpLinkJson('{}', 'br0').problems[0] ?? '', /not an array/);
});
