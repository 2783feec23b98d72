/**
 * `pmc pm discover`: machines that could become nodes, and how pmc came to know of each. It only
 * reads: the nodes' DRBD configuration and mDNS (avahi-browse) on the nodes, in the same round
 * trip as the probe, and a bounded SSH scan from the manager that ends every connection at the
 * host key (no credential is offered). Being found trusts nothing: each candidate comes with the
 * fingerprint of the key it showed, to be compared on its console before `pmc pm add`.
 */
import { lookup } from 'node:dns/promises';
import { isIP, isIPv4 } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Config } from '../../config/load.js';
import type { ClusterState } from '../../model/cluster.js';
import { readCluster, unreachableWarnings } from '../../model/read.js';
import { parseAvahiBrowse, type MdnsService } from '../../probe/parsers/avahi.js';
import { parseIpAddrJson } from '../../probe/parsers/ip-addr.js';
import { blobKeyType, fingerprintSha256, KnownHostsStore } from '../../ssh/known-hosts.js';
import type { RemoteResult, SshTarget } from '../../ssh/types.js';
import { isPmcError, PmcError } from '../../util/errors.js';
import { isNodeName } from '../../util/names.js';
import {
  compareAddresses, formatIpv4Subnet, ipv4SubnetContains, ipv4SubnetHosts, ipv4SubnetOf, type Ipv4Subnet,
} from '../../util/network.js';
import { inParallel } from '../../util/parallel.js';
import { commandLine } from '../../util/shell.js';
import type { OpContext, Report } from '../engine/context.js';
import { describeFailure } from '../engine/execute.js';
import { withNode } from './add.js';
import { MAX_SCAN_ADDRESSES } from './discover-args.js';

/** How long an address may take to show its host key: a host on the LAN does it in milliseconds. */
export const SCAN_TIMEOUT_MS = 2000;
/** Addresses contacted at once: polite to the network, and to the manager's sockets. */
export const SCAN_CONCURRENCY = 32;
/** Without --subnet, the subnet scanned around each node's address. */
export const DEFAULT_SCAN_PREFIX = 24;
/** Stands for the name in a suggested `pm add` when pmc does not know it; pm add refuses it as a name. */
export const NAME_PLACEHOLDER = '<name>';
/** avahi-browse -t ends once its cache is listed and resolved, within seconds; a hung daemon must not hold the run. */
const AVAHI_TIMEOUT_MS = 15_000;
const IP_ADDR = 'PATH=$PATH:/usr/sbin:/sbin ip -j addr show';
/** Exit 127 (as the shell's "command not found") when avahi-browse is not installed. */
const AVAHI_BROWSE = 'command -v avahi-browse >/dev/null 2>&1 || exit 127; exec avahi-browse -tpr _ssh._tcp';

export interface DiscoverOptions {
  /** --subnet; without it, the /24 of each node's address. */
  subnet: Ipv4Subnet | undefined;
  /** --config as typed: repeated in the suggested `pm add`, so that it lists the node in the same file. */
  configArg: string | undefined;
}

/** How a candidate came to be known: each source that named it. */
export type FoundBy =
  | { source: 'drbd-peer'; vm: string; node: string }
  | { source: 'mdns'; node: string; service: string }
  | { source: 'subnet-scan'; subnet: string };

export interface SshAnswer {
  /** An SSH server completed the key exchange (it proved it holds the key below). */
  answered: boolean;
  keyType?: string;
  /** SHA256:... as ssh-keygen -l prints it. */
  fingerprint?: string;
  /** Why there is no key: no answer, or a key that contradicts known_hosts. */
  problem?: string;
}

export interface Candidate {
  address: string;
  /** Its host name, when DRBD or mDNS named it. */
  name?: string;
  foundBy: FoundBy[];
  ssh: SshAnswer;
  /** The pm add command for it, every word quoted; absent without a host key. */
  add?: string;
}

export type MdnsStatus = 'read' | 'not-installed' | 'failed' | 'unreachable';

export interface DiscoverResult {
  configFile: string;
  candidates: Candidate[];
  sources: {
    /** Nodes whose DRBD resources were read (the reachable ones). */
    drbd: string[];
    /** avahi-browse per node; a node without it is simply no source. */
    mdns: { node: string; status: MdnsStatus; problem?: string }[];
    scan: {
      /** Scanned from the manager, SCAN_CONCURRENCY addresses at a time. */
      subnets: string[];
      /** Addresses contacted in them (the nodes' own left out). */
      addresses: number;
      timeoutMs: number;
      /** Why a node's subnet, or the whole scan, was left out. */
      notes: string[];
    };
  };
}

/** What discover reads on a node besides the probe. */
export interface NodeDiscovery {
  /** Every address of its interfaces: the node is known under each of them. */
  addresses: string[];
  mdns: { status: Exclude<MdnsStatus, 'unreachable'>; services: MdnsService[]; problem?: string };
  problems: string[];
}

/** A host one source named, before the sources are merged. */
export interface Lead {
  address: string;
  name: string | undefined;
  foundBy: FoundBy;
}

/** Names and addresses under which the nodes of pmc.yaml are known. */
export interface KnownNodes {
  names: ReadonlySet<string>;
  addresses: ReadonlySet<string>;
}

/** avahi-browse's result on a node: its services, no such tool, or why it failed. */
export function readMdns(result: RemoteResult): NodeDiscovery['mdns'] {
  if (result.exitCode === 127) return { status: 'not-installed', services: [] };
  const services = parseAvahiBrowse(result.stdout).value;
  return result.exitCode === 0 ? { status: 'read', services } : { status: 'failed', services, problem: describeFailure(result) };
}

/**
 * The nodes' names (pmc.yaml's and the host names they call themselves, which DRBD files use)
 * and addresses (pmc.yaml's, those this machine resolves their names to, every address of
 * their interfaces) and this machine's own addresses: none of them is a new node.
 */
export function knownNodes(config: Pick<Config, 'nodes'>, state: ClusterState, addresses: Iterable<string>): KnownNodes {
  return {
    names: new Set([...config.nodes.map((n) => n.name), ...state.nodes.flatMap((n) => (n.facts?.hostname ? [n.facts.hostname] : []))]),
    addresses: new Set([...config.nodes.flatMap((n) => (n.address ? [n.address] : [])), ...addresses]),
  };
}

export function isKnown(known: KnownNodes, lead: Pick<Lead, 'address' | 'name'>): boolean {
  return known.addresses.has(lead.address) || (lead.name !== undefined && known.names.has(lead.name));
}

/** Every host a node's DRBD resources name besides the node itself: "DRBD peer of VM x on pm-1". */
export function drbdLeads(state: ClusterState): Lead[] {
  return state.nodes.flatMap((node) => (node.facts?.drbdResources ?? []).flatMap((resource) => resource.hosts
    .filter((host) => host.name !== node.facts!.hostname && host.name !== node.name)
    .flatMap((host): Lead[] => {
      const name = isNodeName(host.name) ? host.name : undefined;
      // Without an address in the file, DRBD resolves the name: so does pm add.
      const address = host.address ?? name;
      return address ? [{ address, name, foundBy: { source: 'drbd-peer', vm: resource.name, node: node.name } }] : [];
    })));
}

/** Every SSH service the nodes' avahi-daemons saw announced on their networks. */
export function mdnsLeads(discovery: ReadonlyMap<string, NodeDiscovery>): Lead[] {
  return [...discovery].flatMap(([node, d]) => d.mdns.services.map((s): Lead => ({
    address: s.address,
    name: isNodeName(s.host) ? s.host : undefined,
    foundBy: { source: 'mdns', node, service: s.name },
  })));
}

/**
 * The subnets to scan without --subnet: the /24 of each node's IPv4 address (as this machine
 * resolves it), each once; a node without one is named in `notes`. More than MAX_SCAN_ADDRESSES
 * in all is refused: the operator picks one with --subnet.
 */
export function defaultSubnets(nodes: readonly { name: string; address: string | undefined; host: string }[]): { subnets: Ipv4Subnet[]; notes: string[] } {
  const subnets: Ipv4Subnet[] = [];
  const notes: string[] = [];
  for (const node of nodes) {
    if (node.address === undefined || !isIPv4(node.address)) {
      notes.push(node.address === undefined
        ? `${node.name}: ${node.host} does not resolve to an IPv4 address on this machine, so no subnet around it was scanned`
        : `${node.name}: ${node.address} is not an IPv4 address, so no subnet around it was scanned`);
      continue;
    }
    const subnet = ipv4SubnetOf(node.address, DEFAULT_SCAN_PREFIX);
    if (!subnets.some((s) => s.network === subnet.network)) subnets.push(subnet);
  }
  const total = subnets.length * 2 ** (32 - DEFAULT_SCAN_PREFIX);
  if (total > MAX_SCAN_ADDRESSES) {
    throw new PmcError('PMC_E_USAGE',
      `the nodes' addresses lie in ${subnets.length} /${DEFAULT_SCAN_PREFIX} subnets (${subnets.map(formatIpv4Subnet).join(', ')}): ${total} addresses, more than the ${MAX_SCAN_ADDRESSES} pmc scans at once`,
      `choose one: pmc pm discover --subnet ${formatIpv4Subnet(subnets[0]!)}`);
  }
  return { subnets, notes };
}

/** The addresses to contact: every host address of the subnets, then every lead's, each once, none of a known node. */
export function addressesToContact(subnets: readonly Ipv4Subnet[], leads: readonly Lead[], known: KnownNodes): string[] {
  const all = [...subnets.flatMap(ipv4SubnetHosts), ...leads.map((l) => l.address)];
  return [...new Set(all)].filter((a) => !known.addresses.has(a));
}

/** `pmc pm add NAME --address ADDR --fingerprint SHA256:...`, every word quoted: safe to paste whatever a host announced. */
export function addCommand(candidate: Pick<Candidate, 'address' | 'name' | 'ssh'>, configArg: string | undefined): string | undefined {
  if (!candidate.ssh.fingerprint) return undefined;
  return commandLine(['pmc', 'pm', 'add', candidate.name ?? NAME_PLACEHOLDER, '--address', candidate.address,
    '--fingerprint', candidate.ssh.fingerprint, ...(configArg === undefined ? [] : ['--config', configArg])]);
}

/**
 * One candidate per address: the leads of every source (known nodes already left out), and the
 * scanned addresses where SSH answered. Its name is the first a source gave (DRBD's before
 * mDNS's: DRBD needs the host name); sorted by address.
 */
export function mergeCandidates(leads: readonly Lead[], answers: ReadonlyMap<string, SshAnswer>, scanned: readonly Ipv4Subnet[],
  configArg: string | undefined): Candidate[] {
  const byAddress = new Map<string, { name: string | undefined; foundBy: FoundBy[] }>();
  const entry = (address: string) => {
    let found = byAddress.get(address);
    if (!found) byAddress.set(address, found = { name: undefined, foundBy: [] });
    return found;
  };
  for (const lead of leads) {
    const found = entry(lead.address);
    found.name ??= lead.name;
    if (!found.foundBy.some((f) => JSON.stringify(f) === JSON.stringify(lead.foundBy))) found.foundBy.push(lead.foundBy);
  }
  for (const [address, answer] of answers) {
    const subnet = scanned.find((s) => ipv4SubnetContains(s, address));
    if (answer.answered && subnet) entry(address).foundBy.push({ source: 'subnet-scan', subnet: formatIpv4Subnet(subnet) });
  }
  return [...byAddress].sort(([a], [b]) => compareAddresses(a, b)).map(([address, found]) => {
    const ssh = answers.get(address) ?? { answered: false, problem: 'not contacted' };
    const candidate: Candidate = { address, ...(found.name ? { name: found.name } : {}), foundBy: found.foundBy, ssh };
    const add = addCommand(candidate, configArg);
    return add ? { ...candidate, add } : candidate;
  });
}

export async function discoverNodes(ctx: OpContext, opts: DiscoverOptions): Promise<Report<DiscoverResult>> {
  const names = ctx.config.nodes.map((n) => n.name);
  const hosts = ctx.config.nodes.map((n) => n.address ?? n.name);
  const [state, readings, resolved] = await Promise.all([
    readCluster(ctx),
    ctx.pool.forEachNode(names, (node) => readNodeDiscovery(ctx, node)),
    Promise.all(hosts.map(reachedAddress)),
  ]);
  const discovery = new Map(readings.flatMap((o) => (o.ok ? [[o.node, o.value] as const] : [])));
  const known = knownNodes(ctx.config, state, [
    ...resolved.filter((a): a is string => a !== undefined),
    ...[...discovery.values()].flatMap((d) => d.addresses),
    ...managerAddresses(),
  ]);
  const leads = [...drbdLeads(state), ...mdnsLeads(discovery)].filter((lead) => !isKnown(known, lead));

  const scanNotes: string[] = [];
  let subnets: Ipv4Subnet[];
  if (opts.subnet) subnets = [opts.subnet];
  else {
    const defaults = defaultSubnets(names.map((name, i) => ({ name, address: resolved[i], host: hosts[i]! })));
    subnets = defaults.subnets;
    scanNotes.push(...defaults.notes);
  }
  const targetFor = (address: string): SshTarget => {
    const { target } = withNode(ctx.config, { name: leads.find((l) => l.address === address)?.name ?? address, address });
    return { ...target, connectTimeoutMs: Math.min(target.connectTimeoutMs, SCAN_TIMEOUT_MS) };
  };
  // A new node is reached as pmc.yaml's defaults say: through ssh.jumpHost, when there is one.
  const jump = ctx.config.ssh.jumpHost;
  let answers: Map<string, SshAnswer>;
  if (jump) {
    // As pm add, which cannot record a host key through a jump host: nothing is contacted.
    const problem = `not contacted: pmc reaches new nodes through the jump host ${jump.host}`;
    scanNotes.push(`${problem}, so no subnet was scanned`);
    subnets = [];
    answers = new Map(leads.map((l) => [l.address, { answered: false, problem }]));
  } else {
    const contacts = addressesToContact(subnets, leads, known);
    const { fetchHostKey } = await import('../../ssh/connection.js');
    const store = new KnownHostsStore();
    const contact = async (address: string): Promise<SshAnswer> => {
      try {
        const first = await fetchHostKey(targetFor(address), { knownHosts: store, ...(ctx.verbose ? { log: ctx.log } : {}) });
        return { answered: true, keyType: blobKeyType(first.keyBlob) ?? 'unknown', fingerprint: fingerprintSha256(first.keyBlob) };
      } catch (err) {
        if (!isPmcError(err)) throw err;
        // A key that contradicts known_hosts came from an SSH server; any other failure is no answer.
        return { answered: err.code === 'PMC_E_HOSTKEY_CHANGED', problem: err.message };
      }
    };
    const results = await inParallel(contacts, SCAN_CONCURRENCY, contact);
    answers = new Map(contacts.map((address, i) => [address, results[i]!]));
  }
  const scannedCount = addressesToContact(subnets, [], known).length;

  const data: DiscoverResult = {
    configFile: ctx.config.file,
    candidates: mergeCandidates(leads, answers, subnets, opts.configArg),
    sources: {
      drbd: state.nodes.filter((n) => n.reachable).map((n) => n.name),
      mdns: names.map((node) => {
        const mdns = discovery.get(node)?.mdns;
        if (!mdns) return { node, status: 'unreachable' as const };
        return { node, status: mdns.status, ...(mdns.problem ? { problem: mdns.problem } : {}) };
      }),
      scan: { subnets: subnets.map(formatIpv4Subnet), addresses: scannedCount, timeoutMs: SCAN_TIMEOUT_MS, notes: scanNotes },
    },
  };
  const warnings = [
    ...unreachableWarnings(state),
    ...[...discovery].flatMap(([node, d]) => d.problems.map((p) => `${node}: ${p}`)),
  ];
  return { data, status: state.nodes.some((n) => !n.reachable) ? 'partial' : 'ok', warnings };
}

async function readNodeDiscovery(ctx: OpContext, node: string): Promise<NodeDiscovery> {
  const [ip, avahi] = await Promise.all([
    ctx.pool.run(node, IP_ADDR, { timeoutMs: 20_000 }),
    ctx.pool.run(node, AVAHI_BROWSE, { timeoutMs: AVAHI_TIMEOUT_MS }),
  ]);
  const addresses = ip.exitCode === 0 ? parseIpAddrJson(ip.stdout) : { value: [], problems: [`ip addr: ${describeFailure(ip)}`] };
  return { addresses: addresses.value, mdns: readMdns(avahi), problems: addresses.problems };
}

/** The address this machine reaches a host at: the host when it is an IP address, else the IPv4 address its name resolves to. */
async function reachedAddress(host: string): Promise<string | undefined> {
  if (isIP(host) !== 0) return host;
  try {
    return (await lookup(host, { family: 4 })).address;
  } catch {
    return undefined;
  }
}

/** This machine's own addresses: the manager is no candidate. */
function managerAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));
}
