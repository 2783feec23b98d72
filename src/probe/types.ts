/**
 * The typed facts one probe run gathers about one node. Everything here is read live from the
 * node; nothing is remembered between runs. Sizes are always bytes, whatever unit the tool used.
 *
 * A fact that could not be read is `undefined` (or an empty list) and the reason is in
 * `NodeFacts.problems`; a fact that was read and is negative (no DRBD module, no bridge,
 * no backup directory) is a plain `false`.
 */

/** Every parser returns a value (possibly partial) plus what it could not make sense of. */
export interface Parsed<T> {
  value: T;
  problems: string[];
}

export interface ProbeOptions {
  /** LVM volume group holding the VM disks (`vg-pmc`). */
  volumeGroup: string;
  /** Bridge the VMs' interfaces attach to (`br0`). */
  bridge: string;
  /** Directory on every node that holds the backups (`/pmc-vm-backup`). */
  backupDir: string;
  /** storage.shared.directory, when configured: the probe reads its mount, marker and disk files. */
  sharedDir?: string | undefined;
}

export interface NodeFacts {
  /** `uname -n`: the name DRBD matches against `on <host>` sections. '' if unreadable. */
  hostname: string;
  /** `uname -r`. */
  kernelRelease: string | undefined;
  memory: MemoryFacts | undefined;
  /** Online CPUs (`getconf _NPROCESSORS_ONLN`). */
  cpus: number | undefined;
  /** The configured volume group; undefined when it does not exist or LVM could not be asked. */
  vg: VolumeGroup | undefined;
  /** Every LV of the configured volume group. */
  lvs: LogicalVolume[];
  bridge: BridgeFacts;
  drbd: DrbdNodeFacts;
  /** DRBD resources: the configuration joined with the kernel's live state by name / minor. */
  drbdResources: DrbdResource[];
  /** Every `/etc/drbd.d/*.res` file (full paths), including ones that define no live resource. */
  drbdResourceFiles: string[];
  /**
   * Minors with an unresolved "Split-Brain detected" in the kernel log since boot. This is raw
   * evidence and may be old; `DrbdResource.splitBrain` is the current verdict.
   */
  splitBrainMinors: number[];
  domains: Domain[];
  libvirt: LibvirtFacts;
  tools: ToolFacts;
  backupDirExists: boolean;
  /** The shared storage directory as this node sees it; undefined when storage.shared is not configured. */
  shared: SharedStorageFacts | undefined;
  /** Failovers recorded on this node (AUTHORITY_DIR): its copy of these resources is the current one. */
  authority: AuthorityMark[];
  /** Everything that failed or could not be parsed, as `<section>: <what>`. Never swallowed. */
  problems: string[];
}

/**
 * storage.shared.directory on one node. pmc proves that every node mounts the same file system
 * by a marker file holding a random id (`pm init` writes it once): the same id everywhere.
 */
export interface SharedStorageFacts {
  directory: string;
  /** The directory exists (false: nothing else could be read). */
  present: boolean;
  /** Something is mounted exactly there (`mountpoint -q`), not just a directory of the root file system. */
  mountPoint: boolean;
  /** The type of the file system holding the directory (`nfs4`, `ceph`, ...), from findmnt. */
  fsType: string | undefined;
  /** The content of `<directory>/.pmc-shared-id`; undefined when it is missing. */
  id: string | undefined;
  /** The disk files (`*.img`) directly in the directory, by file name. */
  files: SharedFile[];
  /** Why the directory could not be read (e.g. "timed out": a hung network file system). */
  failure: string | undefined;
}

export interface SharedFile {
  name: string;
  sizeBytes: number;
}

/** This node's copy of `resource` became the authoritative one when `lostNode` was failed away from. */
export interface AuthorityMark {
  resource: string;
  /** The node that holds the stale copy. */
  lostNode: string;
  /** When the failover happened (ISO 8601, the node's clock). */
  at: string;
}

export interface MemoryFacts {
  totalBytes: number;
  /** MemAvailable: what can be given to new VMs without swapping. */
  availableBytes: number;
}

export interface VolumeGroup {
  name: string;
  sizeBytes: number;
  freeBytes: number;
  /** LV sizes are rounded up to whole extents. */
  extentSizeBytes: number | undefined;
}

export interface LogicalVolume {
  name: string;
  vgName: string;
  /** `/dev/<vg>/<lv>`, the path DRBD resource files use. */
  path: string;
  sizeBytes: number;
  /** The raw `lv_attr` (`-wi-ao----`). */
  attr: string;
  /** Activated (attr state `a`): a DRBD resource can only attach to an active LV. */
  active: boolean;
  /** Held open (attr `o`), e.g. by an attached DRBD device. */
  open: boolean;
  /** Origin LV when this LV is a snapshot. */
  origin: string | undefined;
}

export interface BridgeFacts {
  name: string;
  /** An interface of that name exists. */
  present: boolean;
  /** It is a Linux bridge (not e.g. a plain NIC that happens to carry the name). */
  isBridge: boolean;
  /** Administratively up (IFF_UP). */
  up: boolean;
  /** Has carrier (LOWER_UP): at least one port is up. */
  carrier: boolean;
  /** Kernel operstate as printed by ip (`UP`, `DOWN`, `UNKNOWN`, ...). */
  operState: string | undefined;
}

export interface DrbdNodeFacts {
  /** /proc/drbd exists. */
  moduleLoaded: boolean;
  /** From the first line of /proc/drbd, e.g. `8.4.11`. */
  kernelVersion: string | undefined;
  /** drbd-utils version (`DRBDADM_VERSION`), e.g. `9.22.0`. */
  utilsVersion: string | undefined;
  /** Every minor the kernel has a device for, whether or not a configured resource claims it. */
  minorsInKernel: number[];
}

// ---------------------------------------------------------------------------------------------
// DRBD. State words are the DRBD 9 vocabulary, which `drbdsetup events2` prints on 8.4 too;
// /proc/drbd's combined 8.4 `cs:` word is split into connection + replication to match.

export type DrbdRole = 'Primary' | 'Secondary' | 'Unknown';

export type DrbdDiskState =
  | 'Diskless' | 'Attaching' | 'Detaching' | 'Failed' | 'Negotiating'
  | 'Inconsistent' | 'Outdated' | 'DUnknown' | 'Consistent' | 'UpToDate';

export type DrbdConnectionState =
  | 'StandAlone' | 'Disconnecting' | 'Unconnected' | 'Timeout' | 'BrokenPipe'
  | 'NetworkFailure' | 'ProtocolError' | 'TearDown' | 'Connecting' | 'Connected';

export type DrbdReplicationState =
  | 'Off' | 'Established' | 'StartingSyncS' | 'StartingSyncT' | 'WFBitMapS' | 'WFBitMapT'
  | 'WFSyncUUID' | 'SyncSource' | 'SyncTarget' | 'VerifyS' | 'VerifyT'
  | 'PausedSyncS' | 'PausedSyncT' | 'Ahead' | 'Behind';

/** One `on <host>` section of a resource, with the resource-level values it inherits filled in. */
export interface DrbdHost {
  name: string;
  nodeId: number | undefined;
  /** IP address without port or brackets (`10.99.0.11`, `fd00::1`). */
  address: string | undefined;
  port: number | undefined;
  /** `/dev/drbd10` (derived from the minor when the file only says `minor 10`). */
  device: string | undefined;
  minor: number | undefined;
  /** Backing device, normally the LV `/dev/<vg>/<vm>`. */
  disk: string | undefined;
}

/** A resource as the configuration describes it (drbdadm dump, a raw .res file). */
export interface DrbdResourceConfig {
  name: string;
  /** File the resource is defined in, when known (drbdadm dump names it; raw files are read by name). */
  configFile: string | undefined;
  hosts: DrbdHost[];
  /** `net { allow-two-primaries yes; }` in the resource, one of its connections, or `common`. */
  allowTwoPrimaries: boolean;
  /** Number of volumes; pmc uses volume 0 only, more is reported as a problem. */
  volumeCount: number;
}

export interface DrbdPeer {
  /** Peer node name: the DRBD 9 connection name, or on 8.4 the one other host in the config. */
  node: string | undefined;
  nodeId: number | undefined;
  connection: DrbdConnectionState;
  role: DrbdRole;
  replication: DrbdReplicationState;
  diskState: DrbdDiskState;
  /** Progress of a running resync or verify, 0-100 (events2/status `done:`, /proc/drbd `sync'ed:`). */
  syncPercent: number | undefined;
  /** Data not yet in sync with this peer. */
  outOfSyncBytes: number | undefined;
  /** DRBD 9 events2 reports `sync-state:SplitBrain` on a StandAlone connection. */
  splitBrainReported: boolean;
}

export interface DrbdResource {
  name: string;
  /** Found in the configuration. False: the kernel runs a resource no file describes. */
  configured: boolean;
  /** Known to the kernel (`drbdadm up` was done). False: configured but down. */
  up: boolean;
  configFile: string | undefined;
  /** This node's values (its `on <hostname>` section; the kernel's when not configured). */
  minor: number | undefined;
  device: string | undefined;
  disk: string | undefined;
  address: string | undefined;
  port: number | undefined;
  /** Every host in the configuration, this node included. */
  hosts: DrbdHost[];
  /** As configured in the files. */
  allowTwoPrimaries: boolean;
  /**
   * As the kernel currently runs it (`drbdsetup show`), which differs from the file after
   * `drbdadm net-options --allow-two-primaries`; undefined when down or unknown.
   */
  allowTwoPrimariesLive: boolean | undefined;
  /** Local role and disk; undefined when the resource is down. */
  role: DrbdRole | undefined;
  diskState: DrbdDiskState | undefined;
  /** Usable size of the DRBD device (events2), when up. */
  sizeBytes: number | undefined;
  peers: DrbdPeer[];
  /**
   * Split brain now: events2 says so (`sync-state:SplitBrain`, newer drbd-utils), or the kernel
   * logged an unresolved split brain for this minor since boot and no peer is connected now
   * (the reconnect that resolves it clears this).
   */
  splitBrain: boolean;
  /**
   * How this node last lost its connection for this resource, from the kernel log since boot
   * (undefined: not since boot, or the log no longer has it): the peer's role then, and whether
   * the link was lost or closed on purpose.
   */
  lastConnectionLoss: { peerRoleBefore: string | undefined; to: string; secondsSinceBoot: number | undefined } | undefined;
}

// ---------------------------------------------------------------------------------------------
// libvirt

/** The states `virsh domstate` / `virsh list` print. */
export type DomainState =
  | 'running' | 'idle' | 'paused' | 'in shutdown' | 'shut off' | 'crashed' | 'pmsuspended' | 'no state';

export interface DomainDisk {
  /** `disk`, `cdrom`, `floppy` or `lun`. */
  device: string;
  /** `block`, `file`, `network`, `volume`, ... */
  type: string;
  /** source dev / file / name (`/dev/drbd10`); undefined for an empty cdrom. */
  source: string | undefined;
  /** Guest device name (`vda`). */
  target: string;
  bus: string | undefined;
}

export interface DomainInterface {
  /** `bridge`, `network`, `direct`, ... */
  type: string;
  mac: string | undefined;
  bridge: string | undefined;
  network: string | undefined;
  model: string | undefined;
}

export interface Domain {
  name: string;
  uuid: string;
  state: DomainState;
  /** Why it is in that state (`migrated`, `crashed`, `I/O error`, ...), from `domstate --reason`. */
  stateReason: string | undefined;
  /** Maximum memory (`<memory>`). */
  memoryBytes: number;
  /** Current vCPUs (`<vcpu current=..>`, else the vcpu count). */
  vcpus: number;
  disks: DomainDisk[];
  interfaces: DomainInterface[];
  autostart: boolean | undefined;
  persistent: boolean | undefined;
  /** `virsh dumpxml --inactive` text, to compare the definitions on two peers. */
  xml: string | undefined;
}

export interface LibvirtVersion {
  /** `Using library: libvirt 9.0.0` */
  library: string | undefined;
  /** `Running hypervisor: QEMU 7.2.22` */
  hypervisor: { name: string; version: string } | undefined;
}

export interface VirshNodeInfo {
  cpuModel: string | undefined;
  cpus: number | undefined;
  cpuMhz: number | undefined;
  sockets: number | undefined;
  coresPerSocket: number | undefined;
  threadsPerCore: number | undefined;
  numaCells: number | undefined;
  memoryBytes: number | undefined;
}

export interface LibvirtFacts {
  /** `virsh version` succeeded, i.e. libvirtd answers (socket activation included). */
  active: boolean;
  version: LibvirtVersion | undefined;
  nodeInfo: VirshNodeInfo | undefined;
  /** Why `virsh version` gave no answer (e.g. "timed out"), when it did not. */
  failure?: string;
}

export interface ToolFacts {
  xdelta3: boolean;
  rsync: boolean;
  /** Optional: only `vm backup -b --zstd` and the backups it wrote need it. */
  zstd: boolean;
}
