// pmc pm discover without SSH: what avahi-browse and ip print, read; the subnets it scans (and
// refuses); the candidates merged from the sources, the nodes of pmc.yaml left out; and the
// pm add line it suggests, quoted whatever a host announced.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildCluster } from '../../../src/model/cluster.js';
import { parseSubnetOption } from '../../../src/ops/pm/discover-args.js';
import {
  addCommand, addressesToContact, defaultSubnets, drbdLeads, isKnown, knownNodes, mdnsLeads, mergeCandidates, readMdns,
  type Lead, type NodeDiscovery, type SshAnswer,
} from '../../../src/ops/pm/discover.js';
import { parseAvahiBrowse } from '../../../src/probe/parsers/avahi.js';
import { parseIpAddrJson } from '../../../src/probe/parsers/ip-addr.js';
import type { RemoteResult } from '../../../src/ssh/types.js';
import { PmcError } from '../../../src/util/errors.js';
import { compareAddresses, formatIpv4Subnet, ipv4SubnetHosts, parseIpv4Subnet } from '../../../src/util/network.js';
import { pairedVm, probes, resource } from '../model/factory.js';

// The layout of avahi-browse -tpr (avahi-utils 0.8): browse events (+), then resolved services (=)
// with host name, address, port and TXT; each service once per interface and protocol.
const AVAHI = [
  '+;br0;IPv6;pm-4;SSH Remote Terminal;local',
  '+;br0;IPv4;pm-4;SSH Remote Terminal;local',
  '+;br0;IPv4;Office\\032printer;SSH Remote Terminal;local',
  '=;br0;IPv6;pm-4;SSH Remote Terminal;local;pm-4.local;fe80::5054:ff:fe12:3404;22;',
  '=;br0;IPv4;pm-4;SSH Remote Terminal;local;pm-4.local;10.99.0.14;22;',
  '=;eth1;IPv4;pm-4;SSH Remote Terminal;local;pm-4.local;10.99.0.14;22;',
  '=;br0;IPv4;Office\\032printer;SSH Remote Terminal;local;office\\.printer.local;10.99.0.40;2222;"a=b;c"',
  '',
].join('\n');

describe('avahi-browse -tpr _ssh._tcp', () => {
  test('each resolved IPv4 service once: its escaped name, host name without .local, address and port', () => {
    assert.deepEqual(parseAvahiBrowse(AVAHI), {
      value: [
        { name: 'pm-4', host: 'pm-4', address: '10.99.0.14', port: 22 },
        { name: 'Office\\032printer', host: 'office\\.printer', address: '10.99.0.40', port: 2222 },
      ],
      problems: [],
    });
  });

  test('a line with a control character is left out whole, and said so; a line it cannot read too', () => {
    const parsed = parseAvahiBrowse('=;br0;IPv4;evil;SSH;local;evil\u001b[2J.local;10.99.0.66;22;\n=;br0;IPv4;x;SSH;local;x.local;not-an-ip;22;\n');
    assert.deepEqual(parsed.value, []);
    assert.equal(parsed.problems.length, 2);
    assert.match(parsed.problems[0]!, /control characters, left out: "=;br0;IPv4;evil;SSH;local;evil\\u001b\[2J\.local/);
    assert.match(parsed.problems[1]!, /cannot read .*not-an-ip/);
  });

  test('not installed is no source; a daemon that is not running is a failure with avahi\'s words', () => {
    const result = (exitCode: number, stderr = '', stdout = ''): RemoteResult => ({
      node: 'pm-1', command: 'avahi-browse', exitCode, signal: undefined, stdout, stderr, durationMs: 5, timedOut: false,
    });
    assert.deepEqual(readMdns(result(127)), { status: 'not-installed', services: [] });
    assert.deepEqual(readMdns(result(1, 'Failed to create client object: Daemon not running\n')),
      { status: 'failed', services: [], problem: 'exit 1: Failed to create client object: Daemon not running' });
    assert.equal(readMdns(result(0, '', AVAHI)).services.length, 2);
  });
});

test('ip -j addr show: every address of every interface', () => {
  const text = JSON.stringify([
    { ifname: 'lo', addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8 }, { family: 'inet6', local: '::1', prefixlen: 128 }] },
    { ifname: 'br0', addr_info: [{ family: 'inet', local: '10.99.0.11', prefixlen: 24 }, { family: 'inet', local: '10.98.0.11', prefixlen: 24 }] },
    { ifname: 'eth1', addr_info: [] },
  ]);
  assert.deepEqual(parseIpAddrJson(text), { value: ['127.0.0.1', '::1', '10.99.0.11', '10.98.0.11'], problems: [] });
  assert.match(parseIpAddrJson('Object "addr" is unknown').problems[0]!, /not JSON/);
});

describe('subnets', () => {
  test('host bits are cleared, a bare address is its /32, anything else is not a subnet', () => {
    assert.equal(formatIpv4Subnet(parseIpv4Subnet('10.99.0.77/24')!), '10.99.0.0/24');
    assert.equal(formatIpv4Subnet(parseIpv4Subnet('10.99.0.77')!), '10.99.0.77/32');
    assert.equal(formatIpv4Subnet(parseIpv4Subnet('192.168.5.9/22')!), '192.168.4.0/22');
    for (const bad of ['10.0.0.0/33', '300.0.0.0/24', 'fd00::/64', '10.0.0.0/', 'pm-1/24', '10.0.0/24', ' ', '10.0.0.0/24/1']) {
      assert.equal(parseIpv4Subnet(bad), undefined, bad);
    }
  });

  test('the addresses a host can have: no network or broadcast address, except in a /31 or /32', () => {
    const hosts = ipv4SubnetHosts(parseIpv4Subnet('10.99.0.0/24')!);
    assert.deepEqual([hosts.length, hosts[0], hosts.at(-1)], [254, '10.99.0.1', '10.99.0.254']);
    assert.deepEqual(ipv4SubnetHosts(parseIpv4Subnet('10.0.0.4/30')!), ['10.0.0.5', '10.0.0.6']);
    assert.deepEqual(ipv4SubnetHosts(parseIpv4Subnet('10.0.0.4/31')!), ['10.0.0.4', '10.0.0.5']);
    assert.deepEqual(ipv4SubnetHosts(parseIpv4Subnet('10.0.0.4/32')!), ['10.0.0.4']);
    assert.equal(ipv4SubnetHosts(parseSubnetOption('10.0.0.0/22')).length, 1022);
  });

  test('--subnet: at most a /22; larger is refused with the parts to scan instead', () => {
    assert.throws(() => parseSubnetOption('10.0.0.0/21'), (err: unknown) => {
      assert.ok(err instanceof PmcError);
      assert.equal(err.code, 'PMC_E_USAGE');
      assert.equal(err.message, '--subnet 10.0.0.0/21 has 2048 addresses; pmc scans at most a /22 (1024) at once');
      assert.equal(err.hint, 'scan it in parts: --subnet 10.0.0.0/22, then --subnet 10.0.4.0/22, ...');
      return true;
    });
    assert.throws(() => parseSubnetOption('0.0.0.0/0'), /4294967296 addresses/);
    assert.throws(() => parseSubnetOption('fd00::/120'), /--subnet "fd00::\/120": not an IPv4 subnet/);
  });

  test('without --subnet: the /24 of each node, each once; a node without an IPv4 address is named; more than 1024 addresses refused', () => {
    const node = (name: string, address: string | undefined) => ({ name, address, host: address ?? name });
    const { subnets, notes } = defaultSubnets([node('pm-1', '10.99.0.11'), node('pm-2', '10.99.0.12'), node('pm-3', '10.98.1.13'), node('pm-4', undefined), node('pm-5', 'fd00::5')]);
    assert.deepEqual(subnets.map(formatIpv4Subnet), ['10.99.0.0/24', '10.98.1.0/24']);
    assert.deepEqual(notes, [
      'pm-4: pm-4 does not resolve to an IPv4 address on this machine, so no subnet around it was scanned',
      'pm-5: fd00::5 is not an IPv4 address, so no subnet around it was scanned',
    ]);
    const five = Array.from({ length: 5 }, (_, i) => node(`pm-${i}`, `10.0.${i}.1`));
    assert.throws(() => defaultSubnets(five), (err: unknown) => {
      assert.ok(err instanceof PmcError);
      assert.equal(err.code, 'PMC_E_USAGE');
      assert.match(err.message, /lie in 5 \/24 subnets \(10\.0\.0\.0\/24, .*\): 1280 addresses, more than the 1024 pmc scans at once/);
      assert.equal(err.hint, 'choose one: pmc pm discover --subnet 10.0.0.0/24');
      return true;
    });
  });

  test('addresses in numeric order', () => {
    assert.deepEqual(['10.0.0.10', 'pm-9', '10.0.0.9', '9.0.0.1', 'fd00::1'].sort(compareAddresses), ['9.0.0.1', '10.0.0.9', '10.0.0.10', 'fd00::1', 'pm-9']);
  });
});

describe('candidates', () => {
  const config = { nodes: [{ name: 'pm-1', address: '10.99.0.11' }, { name: 'pm-2', address: '10.99.0.12' }], ignorePrefix: 'ignore' };
  // pm-1 holds web-1 with pm-3 (not in pmc.yaml) and db-1 with pm-2; pm-2's files name pm-1 on a
  // replication network (10.98.0.11), and a host "old-2" at pm-2's own address.
  const state = buildCluster(config, probes(['pm-1', 'pm-2'],
    pairedVm('web-1', 'pm-1', 'pm-3', 10),
    pairedVm('db-1', 'pm-1', 'pm-2', 11),
    { 'pm-2': { drbdResources: [resource('app-1', 'pm-2', ['pm-2', 'pm-1'], 12, {
      hosts: [
        { name: 'pm-2', nodeId: 0, address: '10.98.0.12', port: 7790, device: '/dev/drbd12', minor: 12, disk: '/dev/vg-pmc/app-1' },
        { name: 'pm-1', nodeId: 1, address: '10.98.0.11', port: 7790, device: '/dev/drbd12', minor: 12, disk: '/dev/vg-pmc/app-1' },
        { name: 'old-2', nodeId: 2, address: '10.99.0.12', port: 7790, device: '/dev/drbd12', minor: 12, disk: '/dev/vg-pmc/app-1' },
      ],
    })] } }));
  const known = knownNodes(config, state, ['10.98.0.12', '10.99.0.1']);
  const discovery = (services: NodeDiscovery['mdns']['services']): NodeDiscovery => ({ addresses: [], mdns: { status: 'read', services }, problems: [] });

  test('every host a node\'s DRBD files name that is not a node of pmc.yaml, by name or by address', () => {
    const leads = drbdLeads(state).filter((lead) => !isKnown(known, lead));
    assert.deepEqual(leads, [{ address: '10.99.0.13', name: 'pm-3', foundBy: { source: 'drbd-peer', vm: 'web-1', node: 'pm-1' } }]);
  });

  test('mDNS hosts; a host name that cannot be a node\'s is no name', () => {
    const leads = mdnsLeads(new Map([['pm-2', discovery([
      { name: 'pm-4', host: 'pm-4', address: '10.99.0.14', port: 22 },
      { name: 'Office\\032printer', host: 'office\\.printer', address: '10.99.0.40', port: 22 },
    ])]]));
    assert.deepEqual(leads, [
      { address: '10.99.0.14', name: 'pm-4', foundBy: { source: 'mdns', node: 'pm-2', service: 'pm-4' } },
      { address: '10.99.0.40', name: undefined, foundBy: { source: 'mdns', node: 'pm-2', service: 'Office\\032printer' } },
    ]);
  });

  test('the scan contacts every address once, never a node\'s (nor this machine\'s)', () => {
    const leads: Lead[] = [
      { address: '10.99.0.13', name: 'pm-3', foundBy: { source: 'drbd-peer', vm: 'web-1', node: 'pm-1' } },
      { address: '10.50.0.7', name: undefined, foundBy: { source: 'mdns', node: 'pm-2', service: 'x' } },
    ];
    const contacts = addressesToContact([parseIpv4Subnet('10.99.0.0/28')!], leads, known);
    assert.deepEqual(contacts, ['10.99.0.2', '10.99.0.3', '10.99.0.4', '10.99.0.5', '10.99.0.6', '10.99.0.7', '10.99.0.8', '10.99.0.9', '10.99.0.10', '10.99.0.13', '10.99.0.14', '10.50.0.7']);
  });

  test('one candidate per address, found by every source that named it; the scan adds only hosts that answered', () => {
    const key = (n: number): SshAnswer => ({ answered: true, keyType: 'ssh-ed25519', fingerprint: `SHA256:${String(n).repeat(43).slice(0, 43)}` });
    const leads: Lead[] = [
      { address: '10.99.0.13', name: 'pm-3', foundBy: { source: 'drbd-peer', vm: 'web-1', node: 'pm-1' } },
      { address: '10.99.0.13', name: 'pm-3', foundBy: { source: 'drbd-peer', vm: 'web-1', node: 'pm-1' } },
      { address: '10.99.0.13', name: 'pm3', foundBy: { source: 'mdns', node: 'pm-2', service: 'pm3' } },
      { address: '10.50.0.7', name: 'far-1', foundBy: { source: 'mdns', node: 'pm-2', service: 'far-1' } },
    ];
    const answers = new Map<string, SshAnswer>([
      ['10.99.0.13', key(1)],
      ['10.99.0.9', key(2)],
      ['10.99.0.10', { answered: false, problem: '10.99.0.10: no answer from 10.99.0.10:22 within 2 s' }],
      ['10.50.0.7', { answered: false, problem: 'far-1: no route to 10.50.0.7' }],
    ]);
    const candidates = mergeCandidates(leads, answers, [parseIpv4Subnet('10.99.0.0/24')!], undefined);
    assert.deepEqual(candidates, [
      { address: '10.50.0.7', name: 'far-1', foundBy: [{ source: 'mdns', node: 'pm-2', service: 'far-1' }], ssh: { answered: false, problem: 'far-1: no route to 10.50.0.7' } },
      { address: '10.99.0.9', foundBy: [{ source: 'subnet-scan', subnet: '10.99.0.0/24' }], ssh: key(2),
        add: `pmc pm add '<name>' --address 10.99.0.9 --fingerprint ${key(2).fingerprint}` },
      {
        address: '10.99.0.13', name: 'pm-3', ssh: key(1), add: `pmc pm add pm-3 --address 10.99.0.13 --fingerprint ${key(1).fingerprint}`,
        foundBy: [{ source: 'drbd-peer', vm: 'web-1', node: 'pm-1' }, { source: 'mdns', node: 'pm-2', service: 'pm3' }, { source: 'subnet-scan', subnet: '10.99.0.0/24' }],
      },
    ]);
  });

  test('the pm add line quotes every word: the config path as typed, whatever it holds', () => {
    const ssh: SshAnswer = { answered: true, keyType: 'ssh-ed25519', fingerprint: 'SHA256:uUYMqKcE7F6ObfZOQgnCqBBFz0J1rKLQMKJ5+mphUpI' };
    assert.equal(addCommand({ address: '10.99.0.14', name: 'pm-4', ssh }, "/tmp/my pmc's/$(id).yaml"),
      `pmc pm add pm-4 --address 10.99.0.14 --fingerprint ${ssh.fingerprint} --config '/tmp/my pmc'\\''s/$(id).yaml'`);
    assert.equal(addCommand({ address: '10.99.0.14', name: 'pm-4', ssh: { answered: false, problem: 'refused' } }, undefined), undefined);
  });
});
