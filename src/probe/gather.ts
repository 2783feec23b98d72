import { parseDrbdConfig, parseDrbdsetupShow } from './parsers/drbd-config.js';
import { parseDrbdEvents2 } from './parsers/drbd-events2.js';
import type { DrbdLiveConnection, DrbdLiveResource } from './parsers/drbd-live.js';
import { ABSENT_LINK, parseIpLinkJson } from './parsers/ip-link.js';
import { parseConnectionLossLog, parseSplitBrainLog, type SplitBrainEvent } from './parsers/kernel-log.js';
import { parseLvsJson, parseVgsJson } from './parsers/lvm.js';
import { parseMeminfo } from './parsers/meminfo.js';
import { parseProcDrbd, type ProcDrbdDevice } from './parsers/proc-drbd.js';
import { parseDrbdadmVersion } from './parsers/versions.js';
import {
  parseDomainXml, parseDominfo, parseDomstateReason, parseVirshListAll, parseVirshNodeinfo,
  parseVirshVersion,
} from './parsers/virsh.js';
import { SECTION, SECTION_PREFIX } from './script.js';
import { splitSections, type Section } from './sections.js';
import { expandVirshSessions } from './virsh-session.js';
import type {
  AuthorityMark, BridgeFacts, SharedStorageFacts, Domain, DrbdHost, DrbdPeer, DrbdResource, DrbdResourceConfig, LibvirtFacts,
  NodeFacts, Parsed, ProbeOptions, ToolFacts,
} from './types.js';

/**
 * Turns the output of `buildProbeScript(opts)` into NodeFacts. Never throws on what a node
 * prints: a missing tool, a failed command or unparsable output leaves that fact empty and adds
 * a line to `problems`.
 */
export function parseProbeOutput(stdout: string, opts: ProbeOptions): NodeFacts {
  const split = splitSections(stdout);
  const probe = new ProbeReader(expandVirshSessions(split.sections), split.problems);

  const hostname = probe.text(SECTION.hostname) ?? '';
  const cpuText = probe.text(SECTION.cpus);
  const cpus = cpuText !== undefined && /^\d+$/.test(cpuText) ? Number(cpuText) : undefined;
  if (cpuText !== undefined && cpus === undefined) probe.problems.push(`${SECTION.cpus}: not a number: ${cpuText}`);
  const memory = probe.parsed(SECTION.meminfo, parseMeminfo);

  // `lvm fullreport` holds both the vgs and the lvs report.
  const lvmReport = probe.stdout(SECTION.lvm);
  const vg = lvmReport === undefined ? undefined : probe.use(parseVgsJson(lvmReport, opts.volumeGroup));
  const lvs = lvmReport === undefined ? [] : probe.use(parseLvsJson(lvmReport)).filter((lv) => lv.vgName === opts.volumeGroup);

  const drbd = readDrbd(probe, hostname);
  return {
    hostname,
    kernelRelease: probe.text(SECTION.kernelRelease),
    memory,
    cpus,
    vg,
    lvs,
    bridge: readBridge(probe, opts.bridge),
    drbd: drbd.node,
    drbdResources: drbd.resources,
    drbdResourceFiles: drbd.files,
    splitBrainMinors: drbd.splitBrainMinors,
    domains: readDomains(probe),
    libvirt: readLibvirt(probe),
    tools: readTools(probe),
    backupDirExists: readBackupDir(probe, opts.backupDir),
    shared: opts.sharedDir === undefined ? undefined : readShared(probe, opts.sharedDir),
    authority: readAuthority(probe),
    problems: probe.problems,
  };
}

/** Section access that records every failure in one problems list. */
class ProbeReader {
  constructor(private readonly sections: Map<string, Section>, readonly problems: string[]) {}

  /** The section as it came, or undefined (and a problem) when the script never printed it. */
  section(name: string): Section | undefined {
    const section = this.sections.get(name);
    if (!section) this.problems.push(`${name}: missing from the probe output`);
    return section;
  }

  has(name: string): boolean {
    return this.sections.has(name);
  }

  /** Whether the section's command ran and succeeded, without a problem when not. */
  succeeded(name: string): boolean {
    return this.sections.get(name)?.exitCode === 0;
  }

  /** stdout of a section whose command succeeded; otherwise a problem saying why not. */
  stdout(name: string): string | undefined {
    const section = this.section(name);
    if (!section) return undefined;
    if (section.exitCode === 0) return section.stdout;
    this.problems.push(`${name}: ${describeFailure(section)}`);
    return undefined;
  }

  text(name: string): string | undefined {
    const out = this.stdout(name)?.trim();
    return out === '' ? undefined : out;
  }

  parsed<T>(name: string, parse: (text: string) => Parsed<T>): T | undefined {
    const out = this.stdout(name);
    return out === undefined ? undefined : this.use(parse(out));
  }

  use<T>(result: Parsed<T>): T {
    this.problems.push(...result.problems);
    return result.value;
  }

  /** Sections carrying a file or domain name after a prefix, in output order. */
  named(prefix: string): string[] {
    return [...this.sections.keys()].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
  }
}

function describeFailure(section: Section): string {
  const firstError = section.stderr.split('\n').map((l) => l.trim()).find(Boolean);
  if (section.exitCode === undefined) return 'output cut off before the command finished';
  if (section.exitCode === 127) return `command not found${firstError ? ` (${firstError})` : ''}`;
  if (section.exitCode === 124) return 'timed out';
  return `exit ${section.exitCode}${firstError ? `: ${firstError}` : ''}`;
}

function readTools(probe: ProbeReader): ToolFacts {
  const found = new Set<string>();
  for (const line of probe.stdout(SECTION.tools)?.split('\n') ?? []) {
    const [tool, answer] = line.trim().split(/\s+/);
    if (answer === 'yes' && tool) found.add(tool);
  }
  return { xdelta3: found.has('xdelta3'), rsync: found.has('rsync'), zstd: found.has('zstd') };
}

/** `<resource> <lost node> <time>` per line; anything else is a problem, never a guess. */
function readAuthority(probe: ProbeReader): AuthorityMark[] {
  const marks: AuthorityMark[] = [];
  // Probe output captured before the section existed has no failover records to read.
  if (!probe.has(SECTION.authority)) return marks;
  for (const line of probe.stdout(SECTION.authority)?.split('\n') ?? []) {
    if (line.trim() === '') continue;
    const [resource, lostNode, at] = line.trim().split(/\s+/);
    if (resource && lostNode && at) marks.push({ resource, lostNode, at });
    else probe.problems.push(`${SECTION.authority}: cannot read the failover record "${line.trim()}"`);
  }
  return marks;
}

function readBackupDir(probe: ProbeReader, dir: string): boolean {
  const section = probe.section(SECTION.backupDir);
  // `test -d` answers 1 for "no such directory": that is the fact, not a failure.
  if (section && section.exitCode !== 0 && section.exitCode !== 1) {
    probe.problems.push(`${SECTION.backupDir}: cannot check ${dir}: ${describeFailure(section)}`);
  }
  return section?.exitCode === 0;
}

/** The lines SHARED_SCRIPT prints: `absent`, or `fstype`, `mountpoint`, `id` and one `file <size> <name>` per disk. */
function readShared(probe: ProbeReader, directory: string): SharedStorageFacts {
  const facts: SharedStorageFacts = { directory, present: false, mountPoint: false, fsType: undefined, id: undefined, files: [], failure: undefined };
  const section = probe.section(SECTION.sharedStorage);
  if (!section) return { ...facts, failure: 'not in the probe output' };
  if (section.exitCode !== 0) {
    const failure = describeFailure(section);
    probe.problems.push(`${SECTION.sharedStorage}: cannot read ${directory}: ${failure}`);
    return { ...facts, failure };
  }
  for (const line of section.stdout.split('\n')) {
    const file = /^file (\d+) (.+)$/.exec(line);
    if (line === '' || line === 'absent') continue;
    facts.present = true;
    if (file) facts.files.push({ name: file[2]!, sizeBytes: Number(file[1]) });
    else if (line.startsWith('fstype ')) facts.fsType = line.slice('fstype '.length).trim() || undefined;
    else if (line === 'mountpoint yes' || line === 'mountpoint no') facts.mountPoint = line === 'mountpoint yes';
    else if (line.startsWith('id ')) facts.id = line.slice('id '.length).trim() || undefined;
    else probe.problems.push(`${SECTION.sharedStorage}: cannot read the line "${line}"`);
  }
  return facts;
}

function readBridge(probe: ProbeReader, name: string): BridgeFacts {
  const absent = { name, ...ABSENT_LINK };
  const section = probe.section(SECTION.bridge);
  if (!section) return absent;
  if (section.exitCode === 0) return { name, ...probe.use(parseIpLinkJson(section.stdout, name)) };
  // ip says `Device "br0" does not exist.` and exits 1: a fact about the node, not a failure.
  if (!/does not exist/.test(section.stderr)) probe.problems.push(`${SECTION.bridge}: ${describeFailure(section)}`);
  return absent;
}

// ---------------------------------------------------------------------------------------------
// DRBD

interface DrbdReading {
  node: NodeFacts['drbd'];
  resources: DrbdResource[];
  files: string[];
  splitBrainMinors: number[];
}

function readDrbd(probe: ProbeReader, hostname: string): DrbdReading {
  const procSection = probe.section(SECTION.procDrbd);
  const moduleLoaded = procSection?.exitCode === 0;
  const proc = moduleLoaded ? probe.use(parseProcDrbd(procSection!.stdout)) : undefined;
  const utils = probe.parsed(SECTION.drbdadmVersion, parseDrbdadmVersion);

  // The script only asks the kernel when the module is loaded.
  const events2 = moduleLoaded ? probe.parsed(SECTION.drbdEvents2, parseDrbdEvents2) : undefined;
  const liveAllowTwoPrimaries = moduleLoaded ? probe.parsed(SECTION.drbdsetupShow, parseDrbdsetupShow) : undefined;
  const splitBrains = moduleLoaded ? probe.parsed(SECTION.kernelLog, parseSplitBrainLog) ?? [] : [];
  const losses = moduleLoaded ? probe.parsed(SECTION.kernelLog, parseConnectionLossLog) ?? [] : [];

  const files = (probe.stdout(SECTION.drbdResFiles) ?? '').split('\n').filter(Boolean);
  const configs = readDrbdConfig(probe, files);

  const minorsInKernel = [...new Set([
    ...(events2 ?? []).flatMap((r) => r.devices.map((d) => d.minor)),
    ...(proc?.devices ?? []).map((d) => d.minor),
  ].filter((m): m is number => m !== undefined))].sort((a, b) => a - b);

  const resources = joinDrbd(configs, events2, proc?.devices ?? [], hostname, probe.problems);
  for (const resource of resources) {
    resource.allowTwoPrimariesLive = resource.up ? liveAllowTwoPrimaries?.get(resource.name) : undefined;
  }
  const splitBrainMinors = unresolvedSplitBrainMinors(splitBrains, resources);
  for (const resource of resources) {
    const logged = resource.minor !== undefined && splitBrainMinors.includes(resource.minor);
    resource.splitBrain = resource.peers.some((p) => p.splitBrainReported)
      || (logged && !resource.peers.some((p) => p.connection === 'Connected'));
    const loss = losses.filter((e) => e.resource === resource.name).at(-1);
    resource.lastConnectionLoss = loss && { peerRoleBefore: loss.peerRoleBefore, to: loss.to, secondsSinceBoot: loss.secondsSinceBoot };
  }

  return {
    node: {
      moduleLoaded,
      kernelVersion: proc?.version ?? utils?.kernelVersion,
      utilsVersion: utils?.utilsVersion,
      minorsInKernel,
    },
    resources,
    files,
    splitBrainMinors,
  };
}

/** `drbdadm dump all`, or when it refuses (one broken file breaks it), every .res file raw. */
function readDrbdConfig(probe: ProbeReader, files: string[]): DrbdResourceConfig[] {
  const dump = probe.section(SECTION.drbdadmDump);
  if (dump?.exitCode === 0) return probe.use(parseDrbdConfig(dump.stdout));
  if (files.length === 0) return [];
  if (dump) {
    probe.problems.push(`${SECTION.drbdadmDump}: ${describeFailure(dump)}; reading the .res files directly`);
  }
  const configs: DrbdResourceConfig[] = [];
  for (const file of probe.named(SECTION_PREFIX.resFile)) {
    const text = probe.stdout(SECTION_PREFIX.resFile + file);
    if (text !== undefined) configs.push(...probe.use(parseDrbdConfig(text, file)));
  }
  return configs;
}

/**
 * Joins configured resources with the kernel's: by name with events2 (which works on 8.4 and
 * 9), else by minor with /proc/drbd (8.4 only). /proc/drbd still supplies the resync percentage
 * that events2 on an 8.4 kernel leaves out. `allowTwoPrimariesLive` and `splitBrain` are filled
 * in by the caller.
 */
function joinDrbd(
  configs: DrbdResourceConfig[],
  events2: DrbdLiveResource[] | undefined,
  procDevices: ProcDrbdDevice[],
  hostname: string,
  problems: string[],
): DrbdResource[] {
  const resources: DrbdResource[] = [];
  const claimedMinors = new Set<number>();
  const procByMinor = (minor: number | undefined) => procDevices.find((d) => d.minor === minor);

  for (const config of configs) {
    const local = config.hosts.find((h) => h.name === hostname);
    if (!local && config.hosts.length > 0) {
      problems.push(`drbd: resource ${config.name} has no "on ${hostname}" section`);
    }
    const fromEvents = events2?.find((r) => r.name === config.name);
    const minor = local?.minor ?? agreed(config.hosts, (h) => h.minor) ?? fromEvents?.devices[0]?.minor;
    const proc = procByMinor(minor);
    const live = events2 ? fromEvents : proc && procAsLive(config.name, proc);
    if (minor !== undefined) claimedMinors.add(minor);
    resources.push(joinResource(config, local, minor, hostname, live, proc));
  }

  for (const live of events2 ?? []) {
    if (configs.some((c) => c.name === live.name)) continue;
    const minor = live.devices[0]?.minor;
    if (minor !== undefined) claimedMinors.add(minor);
    problems.push(`drbd: resource ${live.name} is up in the kernel but not in the configuration`);
    const unconfigured: DrbdResourceConfig = {
      name: live.name, configFile: undefined, hosts: [], allowTwoPrimaries: false, volumeCount: live.devices.length,
    };
    resources.push({ ...joinResource(unconfigured, undefined, minor, hostname, live, procByMinor(minor)), configured: false });
  }

  for (const device of procDevices) {
    if (!claimedMinors.has(device.minor)) {
      problems.push(`drbd: minor ${device.minor} is up in the kernel but no known resource uses it`);
    }
  }
  return resources;
}

/** The value every host agrees on, when the node itself is not among them. */
function agreed<T>(hosts: DrbdHost[], pick: (h: DrbdHost) => T | undefined): T | undefined {
  const values = new Set(hosts.map(pick));
  return values.size === 1 ? [...values][0] : undefined;
}

/** /proc/drbd's view of a minor in the events2 shape, for when events2 could not be read. */
function procAsLive(name: string, proc: ProcDrbdDevice): DrbdLiveResource {
  return {
    name,
    role: proc.role,
    devices: [{
      volume: 0, minor: proc.minor, diskState: proc.diskState, sizeBytes: undefined, backingDisk: undefined, open: undefined,
    }],
    connections: [{
      name: undefined,
      peerNodeId: undefined,
      connection: proc.connection,
      role: proc.peerRole,
      splitBrainReported: false,
      peerDevices: [{
        volume: 0,
        replication: proc.replication,
        diskState: proc.peerDiskState,
        syncPercent: proc.syncPercent,
        outOfSyncBytes: proc.outOfSyncBytes,
      }],
    }],
  };
}

function joinResource(
  config: DrbdResourceConfig,
  local: DrbdHost | undefined,
  minor: number | undefined,
  hostname: string,
  live: DrbdLiveResource | undefined,
  proc: ProcDrbdDevice | undefined,
): DrbdResource {
  const device = live?.devices.find((d) => d.volume === 0) ?? live?.devices[0];
  const otherHosts = config.hosts.filter((h) => h.name !== hostname);
  // 8.4 calls its one connection "peer" (or nothing); the config says who that is.
  const peerName = (connectionName: string | undefined): string | undefined => {
    if (config.hosts.some((h) => h.name === connectionName)) return connectionName;
    if (otherHosts.length === 1) return otherHosts[0]!.name;
    return config.hosts.length === 0 && connectionName !== 'peer' ? connectionName : undefined;
  };
  return {
    name: config.name,
    configured: true,
    up: live !== undefined,
    configFile: config.configFile,
    minor,
    device: local?.device ?? agreed(config.hosts, (h) => h.device) ?? (minor !== undefined ? `/dev/drbd${minor}` : undefined),
    disk: local?.disk ?? agreed(config.hosts, (h) => h.disk) ?? device?.backingDisk,
    address: local?.address,
    port: local?.port ?? agreed(config.hosts, (h) => h.port),
    hosts: config.hosts,
    allowTwoPrimaries: config.allowTwoPrimaries,
    allowTwoPrimariesLive: undefined,
    role: live?.role,
    diskState: device?.diskState,
    sizeBytes: device?.sizeBytes,
    peers: (live?.connections ?? []).map((c) => joinPeer(c, peerName(c.name), proc)),
    splitBrain: false,
    lastConnectionLoss: undefined,
  };
}

/** `proc` only fills in what events2 on an 8.4 kernel does not report: resync progress. */
function joinPeer(connection: DrbdLiveConnection, node: string | undefined, proc: ProcDrbdDevice | undefined): DrbdPeer {
  const peerDevice = connection.peerDevices.find((p) => p.volume === 0) ?? connection.peerDevices[0];
  const replication = peerDevice?.replication ?? 'Off';
  const resyncing = /^(Sync|PausedSync|Verify)/.test(replication);
  return {
    node,
    nodeId: connection.peerNodeId,
    connection: connection.connection,
    role: connection.role,
    replication,
    diskState: peerDevice?.diskState ?? 'DUnknown',
    syncPercent: peerDevice?.syncPercent ?? (resyncing ? proc?.syncPercent : undefined),
    outOfSyncBytes: peerDevice?.outOfSyncBytes ?? proc?.outOfSyncBytes,
    splitBrainReported: connection.splitBrainReported,
  };
}

/**
 * Minors whose latest split-brain report is unresolved. DRBD 9 logs the resource name rather
 * than the minor; the resources give the minor for it.
 */
function unresolvedSplitBrainMinors(events: SplitBrainEvent[], resources: DrbdResource[]): number[] {
  const latest = new Map<number, boolean>();
  for (const event of events) {
    const minor = event.minor ?? resources.find((r) => r.name === event.resource)?.minor;
    if (minor !== undefined) latest.set(minor, event.unresolved);
  }
  return [...latest].filter(([, unresolved]) => unresolved).map(([minor]) => minor).sort((a, b) => a - b);
}

// ---------------------------------------------------------------------------------------------
// libvirt

function readLibvirt(probe: ProbeReader): LibvirtFacts {
  const version = probe.parsed(SECTION.virshVersion, parseVirshVersion);
  if (!version) {
    const section = probe.has(SECTION.virshVersion) ? probe.section(SECTION.virshVersion) : undefined;
    const failure = section && section.exitCode !== 0 ? describeFailure(section) : undefined;
    return { active: false, version: undefined, nodeInfo: undefined, ...(failure ? { failure } : {}) };
  }
  return { active: true, version, nodeInfo: probe.parsed(SECTION.virshNodeinfo, parseVirshNodeinfo) };
}

function readDomains(probe: ProbeReader): Domain[] {
  // Without libvirt there are no domain sections, or only failed ones; readLibvirt reports why.
  if (!probe.succeeded(SECTION.virshVersion) || !probe.has(SECTION.virshNames)) return [];
  const names = (probe.stdout(SECTION.virshNames) ?? '').split('\n').map((n) => n.trim()).filter(Boolean);
  const table = probe.parsed(SECTION.virshList, parseVirshListAll) ?? [];

  const domains: Domain[] = [];
  for (const name of names) {
    const xml = probe.stdout(SECTION_PREFIX.domainXml + name);
    const definition = xml === undefined ? undefined : probe.use(parseDomainXml(xml));
    const info = probe.parsed(SECTION_PREFIX.domainInfo + name, parseDominfo);
    const state = probe.parsed(SECTION_PREFIX.domainState + name, parseDomstateReason);
    const listed = table.find((entry) => entry.name === name);

    const uuid = definition?.uuid ?? info?.uuid;
    if (uuid === undefined) {
      probe.problems.push(`domain ${name}: neither its XML nor dominfo could be read; left out`);
      continue;
    }
    if (definition && definition.name !== name) {
      probe.problems.push(`domain ${name}: its XML names it ${JSON.stringify(definition.name)}`);
    }
    const stateWord = state?.state ?? info?.state ?? listed?.state;
    if (stateWord === undefined) probe.problems.push(`domain ${name}: state unknown`);
    domains.push({
      name,
      uuid,
      state: stateWord ?? 'no state',
      stateReason: state?.reason,
      memoryBytes: definition?.memoryBytes ?? info?.maxMemoryBytes ?? 0,
      vcpus: definition?.vcpus ?? info?.vcpus ?? 0,
      disks: definition?.disks ?? [],
      interfaces: definition?.interfaces ?? [],
      autostart: info?.autostart,
      persistent: info?.persistent,
      xml: definition ? xml : undefined,
    });
  }
  return domains;
}
