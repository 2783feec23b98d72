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
