/**
 * Turns the ways a connection can fail into PmcErrors: one line naming the node, plus a
 * hint saying what to do. ssh2 reports failures as plain Errors with a `level` (and a
 * `code` for socket errors); these are the only places that look at them.
 */
import { PmcError } from '../util/errors.js';
import { commandLine, quote } from '../util/shell.js';
import {
  blobKeyType, fingerprintSha256, hostLookupName, keyscanTypeName, plainEntries,
  type HostKeys, type KnownHostEntry, type ServerKeyVerdict,
} from './known-hosts.js';
import type { AuthPlan } from './auth.js';
import type { SshTarget } from './types.js';

/** ssh2's errors carry these beside the message. */
export interface Ssh2Error extends Error {
  level?: string;
  code?: string | number;
  /** Set on channel open failures (1 prohibited, 2 connect failed, 3 unknown type, 4 resource shortage). */
  reason?: number;
}

export function endpoint(target: SshTarget): string {
  return `${target.host}:${target.port}`;
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(1))} s`;
}

/** A failure to open the TCP connection or to complete the SSH handshake. */
export function connectFailure(target: SshTarget, err: Ssh2Error, via: SshTarget | undefined): PmcError {
  const where = endpoint(target);
  const through = via ? ` (through jump host ${endpoint(via)})` : '';
  const code = typeof err.code === 'string' ? err.code : undefined;
  if (code === 'ECONNREFUSED') {
    return new PmcError('PMC_E_NODE_UNREACHABLE', `${target.name}: connection refused on ${where}${through}`,
      `is sshd running on ${target.host} and listening on port ${target.port}?`);
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new PmcError('PMC_E_NODE_UNREACHABLE', `${target.name}: cannot resolve ${target.host}`,
      `check the node's address in the config, or DNS / /etc/hosts`, err.message);
  }
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') {
    return new PmcError('PMC_E_NODE_UNREACHABLE', `${target.name}: no route to ${target.host}`,
      `is ${target.host} up and on a network this machine can reach?`, err.message);
  }
  if (code === 'ETIMEDOUT' || err.level === 'client-timeout') {
    return new PmcError('PMC_E_NODE_UNREACHABLE', `${target.name}: no answer from ${where}${through} within ${seconds(target.connectTimeoutMs)}`,
      `is ${target.host} up? A firewall dropping port ${target.port} looks the same; raise the connect timeout if the network is slow`,
      err.message);
  }
  if (code === 'ECONNRESET' || /before handshake/i.test(err.message)) {
    return new PmcError('PMC_E_NODE_UNREACHABLE', `${target.name}: ${where}${through} closed the connection before the SSH handshake`,
      `is port ${target.port} an SSH server? sshd also drops connections when MaxStartups is exceeded`, err.message);
  }
  return new PmcError('PMC_E_NODE_UNREACHABLE', `${target.name}: cannot connect to ${where}${through}: ${err.message}`);
}

/** A jump host's forwardOut to the target was refused (the jump host could not connect). */
export function tunnelFailure(target: SshTarget, via: SshTarget, err: Ssh2Error): PmcError {
  const what = err.reason === 1
    ? 'the jump host does not allow TCP forwarding (AllowTcpForwarding)'
    : err.message.replace(/^\(SSH\) Channel open failure: /, '');
  return new PmcError('PMC_E_NODE_UNREACHABLE', `${target.name}: jump host ${endpoint(via)} cannot reach ${endpoint(target)}: ${what}`,
    `check that ${via.host} can connect to ${target.host} port ${target.port}`, err.message);
}

/** A node behind a jump host whose jump host itself is unreachable gets the jump host's error, named. */
export function jumpFailure(target: SshTarget, jumpError: PmcError): PmcError {
  return new PmcError(jumpError.code, `${target.name}: via jump host: ${jumpError.message}`, jumpError.hint, jumpError.details);
}

export function authFailure(target: SshTarget, plan: AuthPlan): PmcError {
  const labels = plan.tried.map((method) => (method === 'agent' && plan.agentFailure ? 'agent (unusable)' : method));
  const tried = labels.length > 0 ? `tried: ${labels.join(', ')}` : 'no agent and no usable identity file';
  const notes = [
    ...(plan.agentFailure ? [`agent ${target.agentSocket}: ${plan.agentFailure}`] : []),
    ...plan.skipped.map((note) => `skipped ${note}`),
  ];
  const details = notes.length > 0 ? notes.join('\n') : undefined;
  const hint = plan.encrypted.length > 0 && !target.agentSocket
    ? `${plan.encrypted.join(', ')} ${plan.encrypted.length === 1 ? 'needs' : 'need'} a passphrase and pmc never prompts: load ${plan.encrypted.length === 1 ? 'it' : 'them'} with ssh-add and make sure SSH_AUTH_SOCK is set`
    : `put the public key in ~${target.user}/.ssh/authorized_keys on ${target.host}, or load the right key into ssh-agent (ssh-add)`;
  return new PmcError('PMC_E_AUTH', `${target.user}@${target.name}: authentication failed (${tried})`, hint, details);
}

/**
 * The command that fetches the host's key into known_hosts, run from here or, behind a jump
 * host, on it. Safe to paste whatever the names: every word is quoted for the local shell,
 * and the command the jump host runs is quoted once more for the remote shell ssh hands it to.
 */
export function keyscanCommand(target: SshTarget, keyType: string | undefined, via: SshTarget | undefined): string {
  const file = target.knownHostsFiles[0];
  const scan = ['ssh-keyscan', '-p', target.port, ...(keyType ? ['-t', keyscanTypeName(keyType)] : []), '--', target.host];
  const remoteScan = via ? ['ssh', '-p', via.port, '--', `${via.user}@${via.host}`, commandLine(scan)] : scan;
  return `${commandLine(remoteScan)} >> ${file ? quote(file) : '<a known_hosts file named in the config>'}`;
}

/** `ssh-keygen -R` for each name and file holding one of `entries`. */
function removeCommands(entries: readonly { name: string; entry: KnownHostEntry }[]): string {
  const pairs = new Map(entries.map(({ name, entry }) => [`${name}\0${entry.file}`, [name, entry.file] as const]));
  return [...pairs.values()].map(([name, file]) => commandLine(['ssh-keygen', '-R', name, '-f', file])).join(' && ');
}

function lines(entries: readonly KnownHostEntry[]): string {
  return entries.map((e) => `${e.file}:${e.line}`).join(', ');
}

function describeEntries(entries: readonly KnownHostEntry[]): string {
  return entries.map((e) => `${e.file}:${e.line}: ${e.keyType} ${fingerprintSha256(e.keyBlob)}`).join('\n');
}

/** The names (of those the host is looked up by) each entry matches. */
function named(hostKeys: HostKeys, entries: readonly KnownHostEntry[]): { name: string; entry: KnownHostEntry }[] {
  return hostKeys.byName.flatMap(({ name, entries: forName }) => forName.filter((e) => entries.includes(e)).map((entry) => ({ name, entry })));
}

/**
 * The error for a host key that is not trusted; undefined for a trusted one. `hostKeys` is
 * what known_hosts says about the host (see KnownHostsIndex.lookup).
 */
export function hostKeyFailure(target: SshTarget, verdict: ServerKeyVerdict, keyBlob: Buffer,
  context: { via: SshTarget | undefined; hostKeys: HostKeys }): PmcError | undefined {
  // Every connection to a known node ends here: no fingerprint is computed for it.
  if (verdict.kind === 'trusted') return undefined;
  const { via, hostKeys } = context;
  const keyType = blobKeyType(keyBlob) ?? 'unknown';
  const offered = `${keyType} ${fingerprintSha256(keyBlob)}`;
  const name = hostLookupName(target.host, target.port);
  switch (verdict.kind) {
    case 'unknown':
      return new PmcError('PMC_E_HOSTKEY_UNKNOWN', `${target.name}: host key of ${name} is not known (offered ${offered})`,
        `compare the fingerprint with \`${commandLine(['ssh-keygen', '-lf', `/etc/ssh/ssh_host_${keyscanTypeName(keyType)}_key.pub`])}\` on the node, then trust it: ${keyscanCommand(target, keyType, via)}`,
        `known_hosts files: ${target.knownHostsFiles.join(', ') || '(none configured)'}`);
    case 'changed': {
      const sameType = verdict.entries.filter((e) => e.keyType === keyType);
      const what = sameType.length > 0
        ? `${lines(sameType)} ${sameType.length === 1 ? 'has' : 'have'} a different ${keyType} key`
        : `known_hosts has no ${keyType} key for it, only ${[...new Set(verdict.entries.map((e) => e.keyType))].join(', ')} (${lines(verdict.entries)})`;
      return changedFailure(target, `it offered ${offered}, ${what}`, named(hostKeys, verdict.entries), keyType, via, describeEntries(verdict.entries));
    }
    case 'conflict': {
      const { trusted, others } = verdict;
      return new PmcError('PMC_E_HOSTKEY_CHANGED',
        `${target.name}: conflicting known_hosts entries: ${trusted.entry.file}:${trusted.entry.line} has the offered ${offered} for ${trusted.name}, ${others.map((o) => `${o.entry.file}:${o.entry.line} has a different ${o.entry.keyType} key for ${o.name}`).join(', ')}`,
        `OpenSSH refuses this too: one of the lines is stale or forged. Find out which key the node really has (\`${commandLine(['ssh-keygen', '-lf', `/etc/ssh/ssh_host_${keyscanTypeName(keyType)}_key.pub`])}\` on its console), then delete the wrong line by hand`,
        describeEntries([trusted.entry, ...others.map((o) => o.entry)]));
    }
    case 'revoked':
      return new PmcError('PMC_E_HOSTKEY_CHANGED',
        `${target.name}: host key of ${name} (${offered}) is marked @revoked in ${verdict.entry.file}:${verdict.entry.line}`,
        `the node still uses a key that was revoked: give it a new host key, then update known_hosts`);
  }
}

function changedFailure(target: SshTarget, what: string, offending: { name: string; entry: KnownHostEntry }[], keyType: string | undefined,
  via: SshTarget | undefined, details: string): PmcError {
  const name = hostLookupName(target.host, target.port);
  return new PmcError('PMC_E_HOSTKEY_CHANGED',
    `${target.name}: REMOTE HOST IDENTIFICATION HAS CHANGED for ${name}: ${what}`,
    `someone may be intercepting the connection (man-in-the-middle), or the node was reinstalled. Only if you know why it changed: ${removeCommands(offending)}, then ${keyscanCommand(target, keyType, via)}`,
    details);
}

/**
 * pmc offers only the host key types known_hosts holds for the host, as a key of another type
 * could not be verified; a server with none of them has changed its identity (or is not the
 * node). The hint's ssh-keyscan fetches every type the server has.
 */
export function noCommonHostKeyFailure(target: SshTarget, hostKeys: HostKeys, via: SshTarget | undefined): PmcError {
  const entries = plainEntries(hostKeys);
  const types = [...new Set(entries.map((e) => e.keyType))].join(', ');
  return changedFailure(target, `it has no host key of the types known_hosts holds for it: ${types} (${lines(entries)})`,
    named(hostKeys, entries), undefined, via, describeEntries(entries));
}

/**
 * A configured known_hosts file that exists but cannot be read might hold this host's key,
 * another key for it, or an @revoked line: no verdict is safe, so the host is refused.
 */
export function unreadableKnownHostsFailure(target: SshTarget, file: string, error: { code: string; message: string }): PmcError {
  const cause = error.code === 'EISDIR' ? 'it is a directory' : error.code === 'EACCES' ? 'permission denied' : error.message;
  return new PmcError('PMC_E_HOSTKEY_UNKNOWN',
    `${target.name}: cannot check the host key of ${hostLookupName(target.host, target.port)}: known_hosts file ${file} cannot be read (${error.code}: ${cause})`,
    `make ${quote(file)} a file this user can read, or name another file in ssh.knownHosts in the config`, error.message);
}
