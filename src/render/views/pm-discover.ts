import type { Candidate, DiscoverResult, FoundBy } from '../../ops/pm/discover.js';
import { NAME_PLACEHOLDER } from '../../ops/pm/discover.js';
import type { ViewOptions } from '../output.js';

/** "DRBD peer of VMs a, b on pm-1; mDNS on pm-2 (pm-4); answers SSH in 10.0.0.0/24". */
function foundBy(list: readonly FoundBy[]): string {
  const parts: string[] = [];
  const drbd = new Map<string, string[]>();
  for (const f of list) if (f.source === 'drbd-peer') drbd.set(f.node, [...drbd.get(f.node) ?? [], f.vm]);
  for (const [node, vms] of drbd) parts.push(`DRBD peer of ${vms.length === 1 ? 'VM' : 'VMs'} ${vms.join(', ')} on ${node}`);
  for (const f of list) {
    if (f.source === 'mdns') parts.push(`mDNS on ${f.node} (service ${f.service})`);
    if (f.source === 'subnet-scan') parts.push(`answers SSH in ${f.subnet}`);
  }
  return parts.join('; ');
}

function candidateLines(c: Candidate, opts: ViewOptions): string[] {
  const s = opts.style;
  const lines = [s.bold(c.name ? `${c.address}  ${c.name}` : c.address), `  found by: ${foundBy(c.foundBy)}`];
  if (c.ssh.fingerprint) lines.push(`  host key: ${c.ssh.keyType} ${c.ssh.fingerprint}`);
  else lines.push(`  ssh:      ${s.warn(c.ssh.answered ? c.ssh.problem ?? 'no host key' : `no answer (${c.ssh.problem ?? 'not contacted'})`)}`);
  if (c.add) lines.push(`  add:      ${c.add}${c.name ? '' : s.dim(`   (${NAME_PLACEHOLDER}: the host name it calls itself)`)}`);
  return lines;
}

/** Where pmc looked, in one line: what was used, not what was missing (a node without avahi-browse is no source). */
function sourcesLine(sources: DiscoverResult['sources']): string {
  const mdns = sources.mdns.filter((m) => m.status === 'read').map((m) => m.node);
  const failed = sources.mdns.filter((m) => m.status === 'failed').map((m) => `${m.node}: ${m.problem}`);
  return [
    sources.drbd.length ? `DRBD resources on ${sources.drbd.join(', ')}` : 'no node\'s DRBD resources',
    ...(mdns.length ? [`mDNS on ${mdns.join(', ')}`] : []),
    ...(failed.length ? [`mDNS failed (${failed.join('; ')})`] : []),
    sources.scan.subnets.length
      ? `SSH from this machine to ${sources.scan.addresses} addresses of ${sources.scan.subnets.join(', ')}`
      : 'no SSH scan',
  ].join('; ');
}

/** Each candidate with how it was found, its host key and the pm add to paste; then where pmc looked. */
export function pmDiscoverView(result: DiscoverResult, opts: ViewOptions): string {
  const s = opts.style;
  const n = result.candidates.length;
  const lines = [n === 0
    ? `no candidate nodes: nothing found that ${result.configFile} does not list`
    : `${n} candidate ${n === 1 ? 'node' : 'nodes'} not in ${result.configFile}:`];
  for (const c of result.candidates) lines.push('', ...candidateLines(c, opts));
  if (n > 0) {
    lines.push('', s.dim('Nothing is trusted by being found: before adding one, compare its fingerprint with '
      + '`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` (or that of its key type) on its console.'));
  }
  lines.push(s.dim(`looked at: ${sourcesLine(result.sources)}`));
  for (const note of result.sources.scan.notes) lines.push(s.dim(`note: ${note}`));
  return lines.join('\n');
}
