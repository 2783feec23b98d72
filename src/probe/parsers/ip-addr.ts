import type { Parsed } from '../types.js';

/** Parses `ip -j addr show`: every address of every interface (IPv4 and IPv6), in output order. */
export function parseIpAddrJson(text: string): Parsed<string[]> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { value: [], problems: [`ip addr: not JSON (${(err as Error).message})`] };
  }
  if (!Array.isArray(json)) return { value: [], problems: ['ip addr: JSON is not an array'] };
  const addresses = json.flatMap((link: { addr_info?: unknown }) => (Array.isArray(link?.addr_info) ? link.addr_info : []))
    .map((info: { local?: unknown }) => info?.local)
    .filter((local): local is string => typeof local === 'string');
  return { value: [...new Set(addresses)], problems: [] };
}
