import { isIPv4 } from 'node:net';
import type { Parsed } from '../types.js';

/** One resolved mDNS service, as a node's avahi-daemon saw it on the network. */
export interface MdnsService {
  /** The service name as avahi-browse -p prints it: escaped (`\032` for a space, `\.` for a dot), so always printable. */
  name: string;
  /** The announced host name without its mDNS domain (`pm-4` of `pm-4.local`). */
  host: string;
  address: string;
  port: number;
}

/**
 * Parses `avahi-browse -tpr _ssh._tcp`: one `;`-separated line per event; the resolved ones,
 * `=;iface;IPv4;name;type;domain;host name;address;port;txt`, are the services. avahi escapes
 * the name (so it holds no `;`); the TXT record, last, may. IPv6 answers are left out: pmc
 * scans and reaches new nodes over IPv4 (an IPv6 link-local address means nothing off its link).
 * A line with a control character is refused whole: what a host on the network announces is
 * shown to the operator, and must not drive the terminal.
 */
export function parseAvahiBrowse(text: string): Parsed<MdnsService[]> {
  const services: MdnsService[] = [];
  const problems: string[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('=;')) continue;
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(line)) {
      problems.push(`avahi-browse: a line with control characters, left out: ${JSON.stringify(line)}`);
      continue;
    }
    const [, , protocol, name, , domain, hostName, address, port] = line.split(';');
    if (protocol !== 'IPv4') continue;
    if (!name || !domain || !hostName || !address || !isIPv4(address) || !/^\d{1,5}$/.test(port ?? '')) {
      problems.push(`avahi-browse: cannot read ${JSON.stringify(line)}`);
      continue;
    }
    const host = hostName.endsWith(`.${domain}`) ? hostName.slice(0, -domain.length - 1) : hostName;
    if (!services.some((s) => s.name === name && s.address === address)) services.push({ name, host, address, port: Number(port) });
  }
  return { value: services, problems };
}
