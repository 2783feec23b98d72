/**
 * `pmc vm add`: checks the arguments, reads the cluster, checks and places the VM, reads what
 * the plan depends on from the chosen nodes (nothing changes until the plan runs), then plans
 * and applies (or, with --dry-run, prints) the plan.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { closeSync, createReadStream, existsSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { OpContext, Report } from '../engine/context.js';
import { selectNodes } from '../../config/targets.js';
import type { ClusterState } from '../../model/cluster.js';
import { PmcError } from '../../util/errors.js';
import { commandLine, quote } from '../../util/shell.js';
import { parseCapabilities, type NodeCapabilities } from './domain-xml.js';
import { describeFailure, type ApplyResult } from '../engine/execute.js';
import { mutate } from '../engine/mutate.js';
import {
  checkVmAdd, chooseMac, NODE_ISO_DIR, planVmAdd, type ImageFacts, type IsoFacts, type VmAddFacts, type VmAddRequest, type VmAddTarget,
} from './add-plan.js';
import { parseVmAddArgs, type VmAddArgs } from './add-args.js';

export async function addVm(ctx: OpContext, args: VmAddArgs): Promise<Report<ApplyResult>> {
  const request = parseVmAddArgs(args);
  if (args.from !== undefined) selectNodes(ctx.config, [args.from]);
  const localIso = request.iso ? await checksumLocalIso(ctx, request.iso) : undefined;
  const image = request.image ? readLocalImage(ctx.config.imageStore, request.image) : undefined;
  return mutate(ctx, {
    lock: addLock(ctx, request),
    vm: request.name,
    dryRun: args.dryRun,
    plan: async (state) => {
      const target = checkVmAdd(state, ctx.config, request);
      const facts = { ...await gatherFacts(ctx, state, request, target, localIso), image };
      return planVmAdd(state, ctx.config, request, facts);
    },
  });
}

/**
 * The nodes vm add locks before it reads: those named with -p (and --from); every node when
 * pmc places the VM, for a shared VM, or when a clone's source node is not named (it is found in the state).
 */
function addLock(ctx: OpContext, request: VmAddRequest): string[] {
  // A shared VM is defined on every node.
  if (request.shared || request.nodes.length === 0 || (request.clone && request.clone.from === undefined)) return ctx.config.nodes.map((n) => n.name);
  return [...request.nodes, ...(request.clone?.from ? [request.clone.from] : [])];
}

type LocalIso = Pick<IsoFacts, 'localFile' | 'name' | 'sizeBytes' | 'sha256'>;

/**
 * A disk image of the store: qcow2 when it starts with qcow2's magic (its virtual size is in
 * the header), else raw (its size is the file's).
 */
export function readLocalImage(store: string, name: string): ImageFacts {
  const localFile = join(store, name);
  if (!existsSync(localFile)) {
    const known = existsSync(store) ? readdirSync(store).filter((f) => !f.startsWith('.')) : [];
    throw new PmcError('PMC_E_IMAGE_UNKNOWN', `${name} is not in the image store ${store}`,
      known.length > 0 ? `the store holds: ${known.join(', ')}` : 'put the image there first (imageStore in pmc.yaml names the folder)');
  }
  const fileBytes = statSync(localFile).size;
  const header = Buffer.alloc(32);
  const fd = openSync(localFile, 'r');
  try {
    readSync(fd, header, 0, header.length, 0);
  } finally {
    closeSync(fd);
  }
  if (header.readUInt32BE(0) === QCOW2_MAGIC) {
    return { localFile, name, format: 'qcow2', fileBytes, virtualBytes: Number(header.readBigUInt64BE(24)) };
  }
  return { localFile, name, format: 'raw', fileBytes, virtualBytes: fileBytes };
}

/** "QFI\xfb", the first four bytes of every qcow2 image. */
const QCOW2_MAGIC = 0x514649fb;

async function checksumLocalIso(ctx: OpContext, name: string): Promise<LocalIso> {
  const localFile = join(ctx.config.isoStore, name);
  if (!existsSync(localFile)) {
    const known = existsSync(ctx.config.isoStore) ? readdirSync(ctx.config.isoStore).filter((f) => f.endsWith('.iso')) : [];
    throw new PmcError('PMC_E_ISO_UNKNOWN', `${name} is not in the ISO store ${ctx.config.isoStore}`,
      known.length > 0 ? `the store holds: ${known.map((f) => f.replace(/\.iso$/, '')).join(', ')}` : 'put the image there first (isoStore in pmc.yaml names the folder)');
  }
  ctx.log(`checksumming ${localFile}`);
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(localFile)) hash.update(chunk as Buffer);
  return { localFile, name, sizeBytes: statSync(localFile).size, sha256: hash.digest('hex') };
}

/** The reads the plan depends on; each is a read, so a dry run may do them too (vm restore --to reuses them). */
export async function gatherFacts(ctx: OpContext, state: ClusterState, request: VmAddRequest, target: VmAddTarget, localIso: LocalIso | undefined): Promise<Omit<VmAddFacts, 'image'>> {
  const capabilityXml = await onEachNode(ctx, target.nodes, () => commandLine(['virsh', 'capabilities']));
  const capabilities: Record<string, NodeCapabilities> = {};
  for (const node of target.nodes) capabilities[node] = parseCapabilities(capabilityXml[node]!, node);
  const [primary] = target.nodes as [string];
  // virsh cpu-baseline takes every node's capabilities in one file and prints the CPU model all of them can run.
  const cpu = await remoteRead(ctx, primary, `f=$(mktemp) && trap 'rm -f "$f"' EXIT && cat > "$f" && virsh cpu-baseline --migratable "$f"`,
    target.nodes.map((n) => capabilityXml[n]).join('\n'));
  return {
    uuid: randomUUID(),
    mac: chooseMac(state, ctx.config, request, (count) => randomBytes(count)),
    cpu,
    capabilities,
    addresses: target.drbd ? await replicationAddresses(ctx, state, target.nodes) : {},
    iso: localIso ? await isoOnNodes(ctx, target.nodes, localIso) : undefined,
  };
}

/**
 * The address each node of a pair replicates on: its `address` in pmc.yaml when that is an
 * IP; otherwise its name (or host name) as the other node resolves it, because that is the
 * node that must reach it. Asking the node itself could give a loopback alias (Debian maps
 * its own name to 127.0.1.1).
 */
export async function replicationAddresses(ctx: OpContext, state: ClusterState, nodes: readonly string[]): Promise<Record<string, string>> {
  const addresses: Record<string, string> = {};
  await Promise.all(nodes.map(async (node) => {
    const host = state.nodes.find((n) => n.name === node)!.host;
    if (isIP(host)) {
      addresses[node] = host;
      return;
    }
    const other = nodes.find((n) => n !== node)!;
    const out = await remoteRead(ctx, other, `getent ahostsv4 -- ${quote(host)} | awk 'NR == 1 { print $1 }'`);
    const address = out.trim();
    if (!isIP(address)) {
      throw new PmcError('PMC_E_REMOTE', `${other} cannot resolve ${host}, the address of ${node}`,
        `set the address of ${node} in pmc.yaml to its IP, or add ${host} to /etc/hosts on ${other}`);
    }
    addresses[node] = address;
  }));
  return addresses;
}

/** Which nodes hold the image already: the size first, the sha256 (slow on big images) only if it matches. */
async function isoOnNodes(ctx: OpContext, nodes: readonly string[], iso: LocalIso): Promise<IsoFacts> {
  const file = quote(`${NODE_ISO_DIR}/${iso.name}`);
  const outputs = await onEachNode(ctx, nodes, () => `if [ -f ${file} ]; then echo present; `
    + `if [ "$(stat -c %s ${file})" = ${iso.sizeBytes} ]; then sha256sum < ${file}; fi; fi`);
  const presentOn: string[] = [];
  const differentOn: string[] = [];
  for (const node of nodes) {
    const [present, sum] = outputs[node]!.trim().split('\n');
    if (present !== 'present') continue;
    if (sum?.split(/\s+/)[0] === iso.sha256) presentOn.push(node);
    else differentOn.push(node);
  }
  return { ...iso, presentOn, differentOn };
}

async function onEachNode(ctx: OpContext, nodes: readonly string[], command: (node: string) => string): Promise<Record<string, string>> {
  const outcomes = await ctx.pool.forEachNode(nodes, (node) => remoteRead(ctx, node, command(node)));
  const out: Record<string, string> = {};
  for (const o of outcomes) {
    if (!o.ok) throw o.error;
    out[o.node] = o.value;
  }
  return out;
}

async function remoteRead(ctx: OpContext, node: string, command: string, stdin?: string): Promise<string> {
  const result = await ctx.pool.run(node, command, { timeoutMs: 120_000, ...(stdin === undefined ? {} : { stdin }) });
  if (result.exitCode !== 0) {
    throw new PmcError('PMC_E_REMOTE', `${node}: ${command} failed: ${describeFailure(result)}; nothing was changed`,
      `run it on ${node} by hand to see why`);
  }
  return result.stdout;
}
