import { z } from 'zod';
import { isNodeName } from '../util/names.js';
import { isHostAddress } from '../util/validate.js';

/**
 * The schema of pmc.yaml. Every object is strict: a misspelt key is an error, never silently
 * ignored. Defaults reproduce the old bash tool's layout (vg-pmc, br0, /pmc-vm-backup) so an
 * existing cluster needs no more than its node list.
 */
const port = z.number().int().min(1).max(65535);
const seconds = z.number().positive().max(3600);
const nodeName = z.string().refine(isNodeName, { message: 'must be a host name (letters, digits, "-" and ".")' });
const path = z.string().min(1);
/**
 * Values that reach a tool on a node or the manager as one argument (ssh, getent, lvcreate,
 * virsh...): none may start with "-", where the tool would read it as an option.
 */
const hostAddress = z.string().refine(isHostAddress, { message: 'must be a host name or an IP address (not starting with "-")' });
const userName = z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$/, 'must be a user name (letters, digits, "_", "." and "-", not starting with "-")');

const range = (min: number, max: number) => z.strictObject({
  first: z.number().int().min(min).max(max),
  last: z.number().int().min(min).max(max),
}).refine((r) => r.first <= r.last, { message: '"first" must not be larger than "last"' });

const jumpHost = z.strictObject({
  host: hostAddress,
  port: port.default(22),
  user: userName.optional(),
});

/** SSH settings a node may override. */
const sshOverrides = z.strictObject({
  user: userName.optional(),
  port: port.optional(),
  identityFiles: z.array(path).optional(),
  agent: z.boolean().optional(),
  knownHosts: z.union([path, z.array(path).min(1)]).optional(),
  connectTimeout: seconds.optional(),
  keepaliveInterval: seconds.optional(),
  jumpHost: jumpHost.optional(),
  sudo: z.boolean().optional(),
});

const sshDefaults = z.strictObject({
  user: userName.default('root'),
  port: port.default(22),
  identityFiles: z.array(path).default(['~/.ssh/id_ed25519', '~/.ssh/id_ecdsa', '~/.ssh/id_rsa']),
  agent: z.boolean().default(true),
  knownHosts: z.union([path, z.array(path).min(1)]).default('~/.ssh/known_hosts'),
  connectTimeout: seconds.default(10),
  keepaliveInterval: seconds.default(15),
  jumpHost: jumpHost.optional(),
  sudo: z.boolean().default(false),
  /** How many nodes are contacted at once. */
  concurrency: z.number().int().min(1).max(256).default(32),
});

const node = z.strictObject({
  name: nodeName,
  address: hostAddress.optional(),
  ssh: sshOverrides.optional(),
  /**
   * A command the manager runs (sh -c) to power the node off for good before a failover
   * (IPMI, PDU); pmc fails over only when it exits 0. PMC_NODE and PMC_NODE_ADDRESS are set.
   */
  fence: z.string().min(1).optional(),
});

// eslint-disable-next-line no-control-regex
const absolutePath = z.string().regex(/^\/[^\u0000-\u001f\u007f]*$/, 'must be an absolute path without control characters');

const storage = z.strictObject({
  volumeGroup: z.string().regex(/^[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,126}$/, 'must be a volume group name (letters, digits, "+_.-", not starting with "-")')
    .refine((vg) => vg !== '.' && vg !== '..', { message: 'must be a volume group name' }).default('vg-pmc'),
  drbd: z.strictObject({
    minors: range(0, 1048575).default({ first: 10, last: 9999 }),
    ports: range(1, 65535).default({ first: 7788, last: 17787 }),
    /** Resync rate set on every resource pmc creates (DRBD 8.4's default is far too slow). */
    resyncRate: z.string().regex(/^\d+[KMG]?$/, 'must be a rate like 100M').default('100M'),
    /**
     * Seconds a node waits for its peer's answer to a DRBD ping before it drops the connection
     * (DRBD's ping-timeout; unset keeps DRBD's 0.5 s). Raise it when busy nodes lose their
     * connection without cause: a drop in the middle of a migration leaves a split brain to repair.
     */
    pingTimeout: z.number().min(0.1, 'must be at least 0.1 (seconds)').max(30, 'must be at most 30 (seconds)').optional(),
  }).default({ minors: { first: 10, last: 9999 }, ports: { first: 7788, last: 17787 }, resyncRate: '100M' }),
  /**
   * One network file system (NFS, CephFS, ...) mounted at `directory` on every node: VMs made
   * with `vm add --shared` keep their disk there as `<directory>/<vm>.img` and may run on any
   * node. Absent: every VM is a DRBD pair.
   */
  shared: z.strictObject({
    // Without a final "/", `<directory>/<vm>.img` is the path libvirt reports back.
    directory: absolutePath.refine((d) => !d.endsWith('/'), { message: 'must not end with "/" (nor be "/")' }),
  }).optional(),
});

const network = z.strictObject({
  bridge: z.string().regex(/^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,14}$/, 'must be an interface name (up to 15 letters, digits, "_.-", not starting with "-")').default('br0'),
  /** First three bytes of generated MAC addresses (locally administered or the QEMU OUI). */
  macPrefix: z.string().regex(/^[0-9a-f]{2}(:[0-9a-f]{2}){2}$/, 'must be three hex bytes like 52:54:00').default('52:54:00'),
  /**
   * The old tool's scheme: MAC 52:54:00:<macByte4>:<ip3>:<ip4> from `-a IP`. Off by default,
   * because two VMs whose IPs share the last two octets collide.
   */
  macFromIp: z.boolean().default(false),
  macByte4: z.string().regex(/^[0-9a-f]{2}$/, 'must be one hex byte like 01').default('00'),
});

const backups = z.strictObject({
  directory: absolutePath.default('/pmc-vm-backup'),
  retention: z.strictObject({
    /** Full (dd) images kept per VM; older ones and their increments are removed. */
    full: z.number().int().min(1).max(1000).default(2),
    /** Incremental (xdelta3) images kept per full image. */
    incremental: z.number().int().min(0).max(10000).default(14),
  }).default({ full: 2, incremental: 14 }),
});

export const configSchema = z.strictObject({
  nodes: z.array(node).min(1, 'list at least one node'),
  ssh: sshDefaults.default(sshDefaults.parse({})),
  storage: storage.default(storage.parse({})),
  network: network.default(network.parse({})),
  backups: backups.default(backups.parse({})),
  /** Where ISO images live on the manager; relative paths are relative to the config file. */
  isoStore: path.optional(),
  /** Where bootable disk images (raw or qcow2, for vm add --image) live on the manager. */
  imageStore: path.optional(),
  /** VMs whose name starts with this are listed but never changed by pmc. */
  ignorePrefix: z.string().default('ignore'),
  /**
   * libvirt domain type of the VMs pmc creates: kvm (hardware virtualization), qemu (software
   * emulation, e.g. on nodes that are VMs themselves), or auto: kvm where libvirt offers it on
   * every node of the VM, else qemu.
   */
  domainType: z.enum(['auto', 'kvm', 'qemu']).default('auto'),
}).superRefine((cfg, ctx) => {
  const seen = new Map<string, number>();
  cfg.nodes.forEach((n, i) => {
    const first = seen.get(n.name);
    if (first !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['nodes', i, 'name'], message: `node "${n.name}" is listed twice (also nodes[${first}])` });
    } else seen.set(n.name, i);
  });
});

export type ConfigInput = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
