import type { BridgeFacts, Parsed } from '../types.js';

type LinkState = Omit<BridgeFacts, 'name'>;

export const ABSENT_LINK: LinkState = { present: false, isBridge: false, up: false, carrier: false, operState: undefined };

/** Parses `ip -j -d link show dev <name>`: a JSON array with one object per interface. */
export function parseIpLinkJson(text: string, name: string): Parsed<LinkState> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { value: ABSENT_LINK, problems: [`ip link: not JSON (${(err as Error).message})`] };
  }
  if (!Array.isArray(json)) return { value: ABSENT_LINK, problems: ['ip link: JSON is not an array'] };
  const link = json.find((l: { ifname?: unknown }) => l?.ifname === name) as {
    flags?: unknown; operstate?: unknown; linkinfo?: { info_kind?: unknown };
  } | undefined;
  if (!link) return { value: ABSENT_LINK, problems: [] };
  const flags = Array.isArray(link.flags) ? link.flags : [];
  return {
    value: {
      present: true,
      isBridge: link.linkinfo?.info_kind === 'bridge',
      up: flags.includes('UP'),
      carrier: flags.includes('LOWER_UP'),
      operState: typeof link.operstate === 'string' ? link.operstate : undefined,
    },
    problems: [],
  };
}
