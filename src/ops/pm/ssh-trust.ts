/**
 * Node-to-node SSH trust, which `virsh migrate qemu+ssh://` and node-to-node copies need:
 * root on every node can `ssh` every other node, by name and by address, without a password
 * and with the host key verified.
 *
 * Host keys are read from each node's own /etc/ssh and carried over pmc's verified connections,
 * never fetched with ssh-keyscan (which trusts whoever answers). An existing different key for a
 * host is never removed or replaced: as with OpenSSH, the operator must look at it.
 */
import type { SshPool } from '../../ssh/pool.js';
import {
  blobKeyType, fingerprintSha256, hostLookupName, parseKnownHosts, verifyHostKey, type KnownHostEntry,
} from '../../ssh/known-hosts.js';
import { commandLine, quote } from '../../util/shell.js';
import type { Step } from '../engine/plan.js';

export const ROOT_SSH_DIR = '/root/.ssh';
export const AUTHORIZED_KEYS = `${ROOT_SSH_DIR}/authorized_keys`;
export const KNOWN_HOSTS = `${ROOT_SSH_DIR}/known_hosts`;
const GLOBAL_KNOWN_HOSTS = '/etc/ssh/ssh_known_hosts';
/** The key pair pmc generates for root when it has none. */
const NEW_KEY = `${ROOT_SSH_DIR}/id_ed25519`;
/** Key files ssh tries by default that pmc recognises, in the order pmc prefers them. */
const DEFAULT_IDENTITIES = ['id_ed25519', 'id_ecdsa', 'id_rsa'];
const VERIFY_TIMEOUT_SECONDS = 10;

export interface PublicKey {
  type: string;
  base64: string;
}

/** What one node holds that trust depends on. */
export interface TrustFacts {
  /** The node's own host keys (/etc/ssh/ssh_host_*_key.pub). */
  hostKeys: PublicKey[];
  /** root's key pairs (private and public file present), in DEFAULT_IDENTITIES order. */
  rootKeys: { file: string; key: PublicKey }[];
  /** Keys that may log in as root. */
  authorizedKeys: PublicKey[];
  /** root's known_hosts and the global one: the hosts root's ssh trusts. */
  knownHosts: KnownHostEntry[];
}

/** A node as other nodes see it. */
export interface TrustNode {
  name: string;
  /** What other nodes connect to: its name and, when it differs, its configured address. */
  hosts: string[];
  port: number;
  facts: TrustFacts;
}

/** One direction of trust: can root on `from` ssh to `to`? */
export interface TrustPair {
  from: string;
  to: string;
  /** `from` has no key pair for root: one must be generated first. */
  keyMissing: boolean;
  /** One of root's keys on `from` is in root's authorized_keys on `to`. */
  authorized: boolean;
  /** Names of `to` (as ssh looks them up) that `from` does not know a key for. */
  unknownHosts: string[];
  /** Names under which `from` knows a key `to` does not have (or has revoked it): never touched by pmc. */
  conflicts: { host: string; lines: string[] }[];
  /** Steps that make the pair trusted (empty when it is, or when only the operator can fix it). */
  steps: Step[];
  /** Commands to run on `from` that prove the trust works, one per name of `to`. */
  proofs: string[];
}

const KEY_LINE = /(?:^|\s)((?:ssh|ecdsa|sk-ssh|sk-ecdsa)-[A-Za-z0-9@.-]+)\s+([A-Za-z0-9+/]+={0,3})(?=\s|$)/;

/**
 * The public keys in a file of public keys, authorized_keys (whose lines may start with
 * options) included. Lines that hold no valid key are skipped, as sshd does.
 */
export function parsePublicKeys(text: string): PublicKey[] {
  const keys: PublicKey[] = [];
  for (const line of text.split('\n')) {
    if (line.trim().startsWith('#')) continue;
    const m = KEY_LINE.exec(line);
    if (m && blobKeyType(Buffer.from(m[2]!, 'base64')) === m[1]) keys.push({ type: m[1]!, base64: m[2]! });
  }
  return keys;
}

/** Reads a node's trust facts; the commands only read. */
export async function readTrustFacts(pool: SshPool, node: string): Promise<TrustFacts> {
  const read = async (command: string) => (await pool.run(node, command, { timeoutMs: 60_000 })).stdout;
  const identities = DEFAULT_IDENTITIES.map((name) => `${ROOT_SSH_DIR}/${name}`);
  const [hostKeys, rootKeys, authorizedKeys, userKnown, globalKnown] = await Promise.all([
    read('cat /etc/ssh/ssh_host_*_key.pub'),
    read(`for k in ${identities.map(quote).join(' ')}; do if [ -f "$k" ] && [ -f "$k.pub" ]; then printf '%s ' "$k"; head -n 1 "$k.pub"; fi; done`),
    read(commandLine(['cat', AUTHORIZED_KEYS])),
    read(commandLine(['cat', KNOWN_HOSTS])),
    read(commandLine(['cat', GLOBAL_KNOWN_HOSTS])),
  ]);
  return {
    hostKeys: parsePublicKeys(hostKeys),
    rootKeys: rootKeys.split('\n').flatMap((line) => {
      const [file, ...rest] = line.split(' ');
      const key = parsePublicKeys(rest.join(' '))[0];
      return file && key ? [{ file, key }] : [];
    }),
    authorizedKeys: parsePublicKeys(authorizedKeys),
    knownHosts: [...parseKnownHosts(userKnown, KNOWN_HOSTS), ...parseKnownHosts(globalKnown, GLOBAL_KNOWN_HOSTS)],
  };
}

export function sameKey(a: PublicKey, b: PublicKey): boolean {
  return a.type === b.type && a.base64 === b.base64;
}

export function describeKey(key: PublicKey): string {
  return `${key.type} ${fingerprintSha256(Buffer.from(key.base64, 'base64'))}`;
}

/** Generates root's key pair, or its missing public half; does nothing when both exist. */
export function keyGenerationStep(node: string): Step {
  const key = quote(NEW_KEY);
  return {
    node,
    command: `umask 077 && mkdir -p ${quote(ROOT_SSH_DIR)} && { test -e ${key} || ${commandLine(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', `root@${node}`, '-f', NEW_KEY])}; } && { test -e ${key}.pub || ssh-keygen -y -f ${key} > ${key}.pub; }`,
    why: `generate an SSH key pair for root on ${node} (${NEW_KEY})`,
  };
}

/**
 * A command appending each line that `file` does not hold yet: the given lines, or the lines
 * read from stdin. Data only ever travels as quoted words or stdin, never as shell code.
 */
export function appendMissingLines(file: string, source: { lines: string[] } | 'stdin'): string {
  const f = quote(file);
  const dir = quote(file.slice(0, file.lastIndexOf('/')) || '/');
  // A file whose last line lacks its newline would glue the new line onto it.
  const append = `grep -qxF -e "$line" ${f} || { if [ -s ${f} ] && [ -n "$(tail -c 1 ${f})" ]; then echo >> ${f}; fi; printf '%s\\n' "$line" >> ${f}; }`;
  const loop = source === 'stdin'
    ? `while IFS= read -r line; do if [ -n "$line" ]; then ${append}; fi; done`
    : `for line in ${source.lines.map(quote).join(' ')}; do ${append}; done`;
  return `umask 077 && mkdir -p ${dir} && touch ${f} && ${loop}`;
}

/** Analyses whether root on `from` can ssh to `to`, and what would make it so. */
export function analyzeTrust(from: TrustNode, to: TrustNode): TrustPair {
  const keyMissing = from.facts.rootKeys.length === 0;
  const authorized = from.facts.rootKeys.some((k) => to.facts.authorizedKeys.some((a) => sameKey(a, k.key)));
  const unknownHosts: string[] = [];
  const conflicts: TrustPair['conflicts'] = [];
  for (const host of to.hosts.map((h) => hostLookupName(h, to.port))) {
    const verdicts = to.facts.hostKeys.map((k) => verifyHostKey(from.facts.knownHosts, [host], Buffer.from(k.base64, 'base64')));
    const wrong = verdicts.flatMap((v) => (v.kind === 'changed' ? v.entries : v.kind === 'revoked' ? [v.entry] : []));
    if (wrong.length > 0) conflicts.push({ host, lines: [...new Set(wrong.map((e) => `${e.file}:${e.line}`))] });
    else if (!verdicts.some((v) => v.kind === 'trusted')) unknownHosts.push(host);
  }

  const steps: Step[] = [];
  if (!authorized) {
    if (keyMissing) steps.push(keyGenerationStep(from.name));
    const publicFile = `${from.facts.rootKeys[0]?.file ?? NEW_KEY}.pub`;
    steps.push({
      node: to.name,
      command: appendMissingLines(AUTHORIZED_KEYS, 'stdin'),
      why: `let root from ${from.name} log in to ${to.name}: add ${from.name}'s ${publicFile} to ${AUTHORIZED_KEYS}`,
      input: { fromNode: from.name, command: commandLine(['cat', publicFile]) },
    });
  }
  if (unknownHosts.length > 0 && to.facts.hostKeys.length > 0) {
    const names = unknownHosts.join(',');
    steps.push({
      node: from.name,
      command: appendMissingLines(KNOWN_HOSTS, { lines: to.facts.hostKeys.map((k) => `${names} ${k.type} ${k.base64}`) }),
      why: `let ${from.name} verify ${to.name}: add ${to.name}'s host keys (${to.facts.hostKeys.map((k) => k.type).join(', ')}) to ${KNOWN_HOSTS} as ${names}`,
    });
  }
  const port = to.port === 22 ? [] : ['-p', String(to.port)];
  // UpdateHostKeys=no: a proof only reads; OpenSSH would otherwise add more of the host's keys.
  const proofs = to.hosts.map((host) => commandLine([
    'ssh', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', 'UpdateHostKeys=no', '-o', `ConnectTimeout=${VERIFY_TIMEOUT_SECONDS}`,
    ...port, host, 'true',
  ]));
  return { from: from.name, to: to.name, keyMissing, authorized, unknownHosts, conflicts, steps, proofs };
}
