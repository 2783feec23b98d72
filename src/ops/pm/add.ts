/**
 * `pmc pm add`: a new node joins. Its host key is recorded at first contact and confirmed by
 * the operator (or matched against --fingerprint), written to pmc's known_hosts, the node is
 * checked and made to trust the others (pm init --fix), and only then listed in pmc.yaml.
 */
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Config, NodeConfig } from '../../config/load.js';
import { sshTargets } from '../../config/targets.js';
import { blobKeyType, fingerprintSha256, hostLookupName, keyscanTypeName } from '../../ssh/known-hosts.js';
import type { SshTarget } from '../../ssh/types.js';
import { isPmcError, PmcError } from '../../util/errors.js';
import { commandLine, quote } from '../../util/shell.js';
import type { OpContext, Report } from '../engine/context.js';
import { editConfigFile } from './config-file.js';
import type { InitResult } from './init.js';
import { addNodeToYaml } from './nodes-yaml.js';

export interface PmAddOptions {
  name: string;
  address?: string | undefined;
  /** The SHA256 fingerprint the operator read on the node's console. */
  fingerprint?: string | undefined;
  dryRun: boolean;
}

export interface PmAddResult {
  node: string;
  /** user@host:port pmc connects to. */
  endpoint: string;
  keyType: string;
  fingerprint: string;
  knownHostsFile: string;
  /** The line appended to knownHostsFile; undefined when it already trusted the key. */
  knownHostsLine: string | undefined;
  configFile: string;
  /** dry-run: nothing changed; added: listed in pmc.yaml; not-added: a check failed, pmc.yaml unchanged. */
  mode: 'dry-run' | 'added' | 'not-added';
  /** pm init --fix on the node (checks and node-to-node trust); undefined in a dry run. */
  init: InitResult | undefined;
}

/** A name already listed is refused before any node is contacted. */
export function assertNewNode(config: Pick<Config, 'nodes' | 'file'>, name: string): void {
  if (config.nodes.some((n) => n.name === name)) {
    throw new PmcError('PMC_E_USAGE', `node ${JSON.stringify(name)} is already in ${config.file}`,
      `pmc pm init ${quote(name)} checks it; to add it anew, first pmc pm rm ${quote(name)}`);
  }
}

/** The configuration with the node listed, and how pmc will reach it (the defaults of pmc.yaml apply). */
export function withNode(config: Config, node: NodeConfig): { config: Config; target: SshTarget } {
  const next = { ...config, nodes: [...config.nodes, node] };
  return { config: next, target: sshTargets(next).at(-1)! };
}

/** Refuses a key whose fingerprint is not the one the operator gave; nothing is written then. */
export function assertFingerprint(target: SshTarget, keyBlob: Buffer, given: string): void {
  const seen = fingerprintSha256(keyBlob);
  if (given.trim() === seen) return;
  const type = blobKeyType(keyBlob) ?? 'unknown';
  throw new PmcError('PMC_E_HOSTKEY_CHANGED',
    `${target.name}: ${hostLookupName(target.host, target.port)} shows the host key ${type} ${seen}, not ${given}; nothing was written`,
    `compare with ${commandLine(['ssh-keygen', '-lf', `/etc/ssh/ssh_host_${keyscanTypeName(type)}_key.pub`])} on the node's console: `
    + 'another key there means another host answers at that address (or someone intercepts the connection)');
}

/** The known_hosts line for the node, under its name and the host pmc connects to (as connections look it up). */
export function knownHostsLine(target: SshTarget, keyBlob: Buffer): string {
  const names = [...new Set([target.name, target.host].map((h) => hostLookupName(h, target.port)))];
  return `${names.join(',')} ${blobKeyType(keyBlob)} ${keyBlob.toString('base64')}`;
}

/** The command to run again with the fingerprint: the one typed, every word quoted, so safe to paste. */
export function rerunWithFingerprint(command: string, fingerprint: string): string {
  return `${command} ${commandLine(['--fingerprint', fingerprint])}`;
}

/** Appends the line, keeping every existing line as it is (a last line without newline gets one). */
function appendKnownHosts(file: string, line: string): void {
  let existing = '';
  try {
    existing = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  }
  appendFileSync(file, `${existing && !existing.endsWith('\n') ? '\n' : ''}${line}\n`, { mode: 0o600 });
}

export async function addNode(ctx: OpContext, opts: PmAddOptions): Promise<Report<PmAddResult>> {
  assertNewNode(ctx.config, opts.name);
  const node: NodeConfig = opts.address === undefined ? { name: opts.name } : { name: opts.name, address: opts.address };
  const next = withNode(ctx.config, node);
  const { target } = next;
  if (target.jump) {
    throw new PmcError('PMC_E_USAGE', `${opts.name}: pm add cannot record a host key through a jump host`,
      `record it by hand (compare ssh-keygen -lf on the node's console), add the node to ${ctx.config.file}, then run pmc pm init --fix ${quote(opts.name)}`);
  }
  const { fetchHostKey } = await import('../../ssh/connection.js');
  const contact = await fetchHostKey(target, ctx.verbose ? { log: ctx.log } : {});
  if (opts.fingerprint !== undefined) assertFingerprint(target, contact.keyBlob, opts.fingerprint);
  const fingerprint = fingerprintSha256(contact.keyBlob);
  const keyType = blobKeyType(contact.keyBlob) ?? 'unknown';
  const result: PmAddResult = {
    node: opts.name,
    endpoint: `${target.user}@${hostLookupName(target.host, target.port)}`,
    keyType,
    fingerprint,
    knownHostsFile: target.knownHostsFiles[0]!,
    knownHostsLine: contact.known ? undefined : knownHostsLine(target, contact.keyBlob),
    configFile: ctx.config.file,
    mode: 'dry-run',
    init: undefined,
  };
  if (opts.dryRun) return { data: result, status: 'ok', warnings: [] };

  if (opts.fingerprint === undefined && !contact.known) await confirmKey(ctx, result);
  if (result.knownHostsLine) appendKnownHosts(result.knownHostsFile, result.knownHostsLine);

  const { SshPool } = await import('../../ssh/pool.js');
  const pool = new SshPool(sshTargets(next.config), { concurrency: next.config.ssh.concurrency, ...(ctx.verbose ? { log: ctx.log } : {}) });
  let init: Report<InitResult>;
  try {
    const { pmInit } = await import('./init.js');
    init = await pmInit({ ...ctx, config: next.config, pool }, { nodes: [opts.name], fix: true, dryRun: false });
  } finally {
    await pool.close();
  }
  if (init.status === 'failed') return { data: { ...result, mode: 'not-added', init: init.data }, status: 'failed', warnings: init.warnings };
  editConfigFile(ctx.config.file, (text) => addNodeToYaml(text, ctx.config.file, node));
  return { data: { ...result, mode: 'added', init: init.data }, status: 'ok', warnings: init.warnings };
}

/** Asks the operator to confirm the key, like OpenSSH at first contact; without a terminal, says how to give it. */
async function confirmKey(ctx: OpContext, key: PmAddResult): Promise<void> {
  const check = commandLine(['ssh-keygen', '-lf', `/etc/ssh/ssh_host_${keyscanTypeName(key.keyType)}_key.pub`]);
  try {
    await ctx.confirm('yes', `${key.node} (${key.endpoint}) shows the host key ${key.keyType} ${key.fingerprint}; `
      + `compare it with \`${check}\` on the node's console`, '--fingerprint');
  } catch (err) {
    if (!isPmcError(err) || err.code !== 'PMC_E_CONFIRM') throw err;
    throw new PmcError('PMC_E_CONFIRM', err.message,
      `nothing was written; if \`${check}\` on ${key.node}'s console shows ${key.fingerprint}, run: ${rerunWithFingerprint(ctx.invocation.command, key.fingerprint)}`);
  }
}
