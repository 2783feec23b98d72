import { isIP, isIPv4 } from 'node:net';
import { PmcError } from './errors.js';

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** A MAC address given on the command line, in libvirt's lower-case form. */
export function parseMac(input: string): string {
  const mac = input.trim().toLowerCase().replace(/-/g, ':');
  const hint = 'give six hex bytes like 52:54:00:12:34:56 (unicast: the first byte even)';
  if (!MAC.test(mac)) throw new PmcError('PMC_E_ADDRESS_INVALID', `MAC address ${JSON.stringify(input)} is not six hex bytes`, hint);
  if (parseInt(mac.slice(0, 2), 16) % 2 === 1) {
    throw new PmcError('PMC_E_ADDRESS_INVALID', `MAC address ${mac} is a multicast address`, hint);
  }
  if (mac === '00:00:00:00:00:00') throw new PmcError('PMC_E_ADDRESS_INVALID', 'MAC address 00:00:00:00:00:00 is not usable', hint);
  return mac;
}

/** An IPv4 or IPv6 address given on the command line. */
export function parseIp(input: string): string {
  const ip = input.trim();
  if (isIP(ip) === 0) {
    throw new PmcError('PMC_E_ADDRESS_INVALID', `${JSON.stringify(input)} is not an IP address`, 'give an address like 10.0.0.21');
  }
  return ip;
}

const hexByte = (n: number) => n.toString(16).padStart(2, '0');

/**
 * The old tool's MAC scheme: `<prefix>:<byte4>:<IP octet 3>:<IP octet 4>`. Two VMs whose IPs
 * share the last two octets get the same MAC, which is why it is only used when configured.
 */
export function macFromIp(prefix: string, byte4: string, ip: string): string {
  if (!isIPv4(ip)) {
    throw new PmcError('PMC_E_ADDRESS_INVALID', `network.macFromIp derives the MAC from an IPv4 address; ${ip} is not one`,
      'give an IPv4 address with -a, or a MAC with --mac');
  }
  const [, , third, fourth] = ip.split('.').map(Number);
  return `${prefix}:${byte4}:${hexByte(third!)}:${hexByte(fourth!)}`;
}

/** `<prefix>` and three random bytes. */
export function randomMac(prefix: string, randomBytes: (count: number) => Uint8Array): string {
  return [prefix, ...Array.from(randomBytes(3), hexByte)].join(':');
}

/** An IPv4 network: its first address (as an unsigned 32-bit number) and its prefix length. */
export interface Ipv4Subnet {
  network: number;
  prefix: number;
}

function ipv4Number(ip: string): number {
  return ip.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}

export function ipv4Text(n: number): string {
  return [24, 16, 8, 0].map((shift) => (n >>> shift) & 255).join('.');
}

function prefixMask(prefix: number): number {
  // `<< 32` shifts by 0 in JavaScript: a /0 mask has no bit set.
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** The /prefix network an IPv4 address belongs to. */
export function ipv4SubnetOf(ip: string, prefix: number): Ipv4Subnet {
  return { network: (ipv4Number(ip) & prefixMask(prefix)) >>> 0, prefix };
}

/**
 * `10.0.0.0/24`, or a bare address as its /32; host bits are cleared (`10.0.0.7/24` is
 * `10.0.0.0/24`, as ip and ipcalc read it). Undefined when it is not that.
 */
export function parseIpv4Subnet(input: string): Ipv4Subnet | undefined {
  const match = /^([0-9.]+)(?:\/(\d{1,2}))?$/.exec(input.trim());
  if (!match || !isIPv4(match[1]!)) return undefined;
  const prefix = match[2] === undefined ? 32 : Number(match[2]);
  return prefix <= 32 ? ipv4SubnetOf(match[1]!, prefix) : undefined;
}

export function formatIpv4Subnet(subnet: Ipv4Subnet): string {
  return `${ipv4Text(subnet.network)}/${subnet.prefix}`;
}

/** Every address of the subnet a host can have: without the network and broadcast addresses, except in a /31 or /32. */
export function ipv4SubnetHosts(subnet: Ipv4Subnet): string[] {
  const size = 2 ** (32 - subnet.prefix);
  const [first, last] = size <= 2 ? [0, size - 1] : [1, size - 2];
  return Array.from({ length: last - first + 1 }, (_, i) => ipv4Text(subnet.network + first + i));
}

export function ipv4SubnetContains(subnet: Ipv4Subnet, ip: string): boolean {
  return isIPv4(ip) && ipv4SubnetOf(ip, subnet.prefix).network === subnet.network;
}

/** Orders addresses as numbers (10.0.0.9 before 10.0.0.10); anything not IPv4 after them, by text. */
export function compareAddresses(a: string, b: string): number {
  const [a4, b4] = [isIPv4(a), isIPv4(b)];
  if (a4 && b4) return ipv4Number(a) - ipv4Number(b);
  if (a4 !== b4) return a4 ? -1 : 1;
  return a.localeCompare(b);
}
