import { PmcError } from '../../util/errors.js';
import { formatIpv4Subnet, parseIpv4Subnet, type Ipv4Subnet } from '../../util/network.js';

/**
 * At most a /22 is scanned in one run: at 32 addresses at a time and 2 s for one that does not
 * answer, about a minute; a larger network is a job for a network scanner, not for pmc.
 */
export const MAX_SCAN_ADDRESSES = 1024;
const MIN_SCAN_PREFIX = 32 - Math.log2(MAX_SCAN_ADDRESSES);

/** --subnet as typed: an IPv4 subnet of at most MAX_SCAN_ADDRESSES addresses. */
export function parseSubnetOption(input: string): Ipv4Subnet {
  const subnet = parseIpv4Subnet(input);
  if (!subnet) {
    throw new PmcError('PMC_E_USAGE', `--subnet ${JSON.stringify(input)}: not an IPv4 subnet`, 'give it as address/prefix, e.g. --subnet 10.0.0.0/24');
  }
  if (subnet.prefix < MIN_SCAN_PREFIX) {
    const parts = [subnet.network, subnet.network + MAX_SCAN_ADDRESSES].map((network) => formatIpv4Subnet({ network, prefix: MIN_SCAN_PREFIX }));
    throw new PmcError('PMC_E_USAGE',
      `--subnet ${formatIpv4Subnet(subnet)} has ${2 ** (32 - subnet.prefix)} addresses; pmc scans at most a /${MIN_SCAN_PREFIX} (${MAX_SCAN_ADDRESSES}) at once`,
      `scan it in parts: --subnet ${parts[0]}, then --subnet ${parts[1]}, ...`);
  }
  return subnet;
}
