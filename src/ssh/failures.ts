/**
 * Turns the ways a connection can fail into PmcErrors: one line naming the node, plus a
 * hint saying what to do. ssh2 reports failures as plain Errors with a `level` (and a
 * `code` for socket errors); these are the only places that look at them.
 */
import { PmcError } from '../util/errors.js';
import { quote } from '../util/shell.js';
import { fingerprintSha256, type HostKeyVerdict, hostLookupName, keyscanTypeName, blobKeyType } from './known-hosts.js';
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

/** The command that fetches the host's key into known_hosts, run from here or, behind a jump host, on it. */
function keyscanCommand(target: SshTarget, keyType: string, via: SshTarget | undefined): string {
  const file = target.knownHostsFiles[0];
  const scan = `ssh-keyscan -p ${target.port} -t ${keyscanTypeName(keyType)} ${quote(target.host)}`;
  const remoteScan = via ? `ssh -p ${via.port} ${quote(`${via.user}@${via.host}`)} ${scan}` : scan;
  return `${remoteScan} >> ${file ? quote(file) : '<a known_hosts file named in the config>'}`;
}

/**
 * The error for a host key that is not trusted; undefined for a trusted one. `notes` are
 * known_hosts files that could not be read, which may be why a host looks unknown.
 */
export function hostKeyFailure(target: SshTarget, verdict: HostKeyVerdict, keyBlob: Buffer,
  context: { via: SshTarget | undefined; notes: readonly string[] }): PmcError | undefined {
  const { via, notes } = context;
  const keyType = blobKeyType(keyBlob) ?? 'unknown';
  const offered = `${keyType} ${fingerprintSha256(keyBlob)}`;
  const name = hostLookupName(target.host, target.port);
  switch (verdict.kind) {
    case 'trusted':
      return undefined;
    case 'unknown': {
      const otherTypes = verdict.knownTypes.length > 0
        ? `; known_hosts has only ${verdict.knownTypes.join(', ')} for it, which the server did not offer` : '';
      return new PmcError('PMC_E_HOSTKEY_UNKNOWN', `${target.name}: host key of ${name} is not known (offered ${offered})${otherTypes}`,
        `compare the fingerprint with \`ssh-keygen -lf /etc/ssh/ssh_host_${keyscanTypeName(keyType)}_key.pub\` on the node, then trust it: ${keyscanCommand(target, keyType, via)}`,
        [`known_hosts files: ${target.knownHostsFiles.join(', ') || '(none configured)'}`, ...notes].join('\n'));
    }
    case 'changed': {
      const old = verdict.entries.map((e) => `${e.file}:${e.line}`).join(', ');
      const file = verdict.entries[0]!.file;
      return new PmcError('PMC_E_HOSTKEY_CHANGED',
        `${target.name}: REMOTE HOST IDENTIFICATION HAS CHANGED for ${name}: it offered ${offered}, ${old} has a different ${keyType} key`,
        `someone may be intercepting the connection (man-in-the-middle), or the node was reinstalled. Only if you know why it changed: ssh-keygen -R ${quote(name)} -f ${quote(file)}, then ${keyscanCommand(target, keyType, via)}`,
        verdict.entries.map((e) => `${e.file}:${e.line}: ${e.keyType} ${fingerprintSha256(e.keyBlob)}`).join('\n'));
    }
    case 'revoked':
      return new PmcError('PMC_E_HOSTKEY_CHANGED',
        `${target.name}: host key of ${name} (${offered}) is marked @revoked in ${verdict.entry.file}:${verdict.entry.line}`,
        `the node still uses a key that was revoked: give it a new host key, then update known_hosts`);
  }
}
