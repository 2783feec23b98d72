/**
 * One verified, authenticated SSH connection to one node, shared by every command of a
 * pmc run. Commands run on their own session channels; at most `maxSessions` are open at
 * once (OpenSSH refuses more than its MaxSessions, 10 by default), the rest wait.
 */
import { performance } from 'node:perf_hooks';
import { pipeline, type Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import type { CipherAlgorithm, Client, ClientChannel, KexAlgorithm, MacAlgorithm, ServerHostKeyAlgorithm } from 'ssh2';
import { PmcError } from '../util/errors.js';
import { commandLine } from '../util/shell.js';
import { IdentityStore, planAuth } from './auth.js';
import {
  authFailure, connectFailure, endpoint, hostKeyFailure, noCommonHostKeyFailure, unreadableKnownHostsFailure, type Ssh2Error,
} from './failures.js';
import {
  checkServerKey, fingerprintSha256, hostLookupName, KnownHostsStore, plainEntries, unreadableFiles, type HostKeys,
} from './known-hosts.js';
import { Semaphore } from './semaphore.js';
import type { RemoteResult, RunOptions, SshTarget } from './types.js';

/** OpenSSH's default MaxSessions: session channels one connection may have open at once. */
export const OPENSSH_MAX_SESSIONS = 10;

/** Unanswered keepalives before the connection is declared dead (ssh's ServerAliveCountMax). */
const KEEPALIVE_COUNT_MAX = 3;

/** Seconds between TERM and KILL for a command that outlives its timeout (`timeout -k`). */
const KILL_AFTER_S = 2;

/** Exit statuses of coreutils timeout when it stopped the command: by TERM, or by KILL. */
const TIMEOUT_EXIT_CODES: ReadonlyArray<number | null> = [124, 137];

/**
 * How long past its timeout pmc still waits for a command's channel to close: longer
 * only if something the command started escaped timeout's process group and holds its
 * output open. Then pmc stops waiting and reports the command as timed out.
 */
const GIVE_UP_AFTER_MS = (KILL_AFTER_S + 3) * 1000;

/**
 * Host key algorithms in OpenSSH's order of preference (its default HostKeyAlgorithms, and
 * ssh2's): ed25519 verifies fastest, RSA slowest. ssh-rsa (SHA-1 signatures) comes last.
 */
const HOST_KEY_ALGORITHMS: ServerHostKeyAlgorithm[] = [
  'ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521',
  'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa',
];

/**
 * Key exchange, cipher and MAC in the order pmc offers them: each one computed by Node's
 * own crypto (OpenSSL), the cheapest first, so a handshake costs the manager the same
 * whether or not ssh2's optional native binding was built. Every OpenSSH since 7.4 accepts
 * the first choices; the rest are for older servers.
 */
const KEX_ALGORITHMS: KexAlgorithm[] = [
  'curve25519-sha256', 'curve25519-sha256@libssh.org', 'ecdh-sha2-nistp256', 'ecdh-sha2-nistp384',
  'ecdh-sha2-nistp521', 'diffie-hellman-group-exchange-sha256', 'diffie-hellman-group14-sha256',
  'diffie-hellman-group16-sha512',
];
const CIPHER_ALGORITHMS: CipherAlgorithm[] = [
  'aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'aes128-ctr', 'aes192-ctr', 'aes256-ctr',
];
/** Only used with the ctr ciphers (GCM authenticates itself); encrypt-then-MAC first. */
const MAC_ALGORITHMS: MacAlgorithm[] = [
  'hmac-sha2-256-etm@openssh.com', 'hmac-sha2-512-etm@openssh.com', 'hmac-sha2-256', 'hmac-sha2-512', 'hmac-sha1',
];

/**
 * The phases of a connection and of a command on it, reported as they end (wall clock,
 * performance.now() milliseconds): `tcp` until the socket is connected, `kex` the key exchange
 * (including `hostkey`, pmc's own known_hosts check inside it), `auth` until the server
 * accepted us, `channel` until the command's session channel is open, `transfer` until the
 * command's output is all in and the channel closed.
 */
export type SshPhase = 'tcp' | 'kex' | 'hostkey' | 'auth' | 'channel' | 'transfer';
export type PhaseListener = (phase: SshPhase, startedAt: number, endedAt: number) => void;

export interface ConnectOptions {
  /**
   * A stream already connected to the target's SSH port (a jump host's forwardOut)
   * to use instead of a TCP connection of our own.
   */
  sock?: Duplex;
  /** The jump host `sock` goes through, named in messages and hints. */
  via?: SshTarget;
  /** Session channels open at once; defaults to OPENSSH_MAX_SESSIONS. */
  maxSessions?: number;
  /** --verbose output: one line per event, never stdin or key material. */
  log?: (line: string) => void;
  /** The run's known_hosts files, read once and shared by every connection (a new store reads them afresh). */
  knownHosts?: KnownHostsStore;
  /** The run's identity files, likewise. */
  identities?: IdentityStore;
  /** Told of each phase as it ends (the fleet benchmark's per-phase figures). */
  onPhase?: PhaseListener;
}

/**
 * Connects, verifies the host key against the target's known_hosts files and
 * authenticates. The known_hosts lookup uses the host we connect to (as `[host]:port`
 * when the port is not 22, like OpenSSH) and also accepts entries for the node's name,
 * which then works like ssh's HostKeyAlias. Rejects with a PmcError
 * (PMC_E_NODE_UNREACHABLE, PMC_E_HOSTKEY_UNKNOWN, PMC_E_HOSTKEY_CHANGED, PMC_E_AUTH).
 */
export async function connect(target: SshTarget, options: ConnectOptions = {}): Promise<SshConnection> {
  const store = options.knownHosts ?? new KnownHostsStore();
  const [knownHosts, auth] = await Promise.all([store.load(target.knownHostsFiles), planAuth(target, options.identities)]);
  const unreadable = unreadableFiles(knownHosts)[0];
  if (unreadable) {
    const error = unreadableKnownHostsFailure(target, unreadable.file, unreadable.error!);
    options.log?.(`[${target.name}] ${error.message}`);
    throw error;
  }
  const lookupNames = [...new Set([target.host, target.name].map((h) => hostLookupName(h, target.port)))];
  const hostKeys = knownHosts.index.lookup(lookupNames);
  const started = performance.now();
  const client = new ssh2.Client();
  let hostKeyError: PmcError | undefined;
  const { onPhase } = options;
  let connectedAt = started;
  let handshakeAt = started;
  if (onPhase) {
    client.once('connect', () => { connectedAt = performance.now(); onPhase('tcp', started, connectedAt); });
    client.once('handshake', () => { handshakeAt = performance.now(); onPhase('kex', connectedAt, handshakeAt); });
  }

  return new Promise<SshConnection>((resolve, reject) => {
    const settle = (error: PmcError | undefined): void => {
      client.removeListener('error', onError).removeListener('close', onClose).removeListener('ready', onReady);
      if (error) {
        // Keeps later socket errors of the dying client from being unhandled 'error' events.
        client.on('error', () => undefined);
        client.destroy();
        options.log?.(`[${target.name}] ${error.message}`);
        reject(error);
        return;
      }
      options.log?.(`[${target.name}] connected to ${target.user}@${endpoint(target)}${options.via ? ` via ${endpoint(options.via)}` : ''} in ${Math.round(performance.now() - started)} ms`);
      resolve(new SshConnection(client, target, options));
    };
    const onReady = (): void => {
      onPhase?.('auth', handshakeAt, performance.now());
      settle(undefined);
    };
    const onError = (err: Ssh2Error): void => {
      // An unusable agent is not fatal: ssh2 goes on with the identity files.
      if (err.level === 'agent') {
        auth.agentFailure = err.message;
        return;
      }
      if (hostKeyError) settle(hostKeyError);
      else if (err.level === 'handshake' && /no matching host key/i.test(err.message) && plainEntries(hostKeys).length > 0) {
        settle(noCommonHostKeyFailure(target, hostKeys, options.via));
      } else if (err.level === 'client-authentication') settle(authFailure(target, auth));
      else settle(connectFailure(target, err, options.via));
    };
    const onClose = (): void => settle(hostKeyError ?? connectFailure(target, new Error('connection lost before handshake'), options.via));
    client.on('ready', onReady).on('error', onError).on('close', onClose);

    client.connect({
      host: target.host,
      port: target.port,
      ...(options.sock ? { sock: options.sock } : {}),
      username: target.user,
      authHandler: auth.methods,
      readyTimeout: target.connectTimeoutMs,
      keepaliveInterval: target.keepaliveIntervalMs,
      keepaliveCountMax: KEEPALIVE_COUNT_MAX,
      algorithms: {
        kex: KEX_ALGORITHMS,
        cipher: CIPHER_ALGORITHMS,
        hmac: MAC_ALGORITHMS,
        serverHostKey: hostKeyAlgorithms(hostKeys),
      },
      hostVerifier: (keyBlob: Buffer): boolean => {
        const checkStarted = performance.now();
        hostKeyError = hostKeyFailure(target, checkServerKey(hostKeys, keyBlob), keyBlob, { via: options.via, hostKeys });
        onPhase?.('hostkey', checkStarted, performance.now());
        return hostKeyError === undefined;
      },
    });
    declineHostKeyProofs(client);
  });
}

/** OpenSSH's announcement of all its host keys after login (for ssh's UpdateHostKeys). */
const HOSTKEYS_ANNOUNCEMENT = 'hostkeys-00@openssh.com';

type GlobalRequestHandler = (protocol: { requestSuccess(): void }, name: string, wantReply: boolean, data: unknown) => void;

/**
 * ssh2 answers OpenSSH's announcement of its host keys by asking the server to prove it holds
 * each one, then parses every key and checks every signature, only to emit a 'hostkeys' event
 * pmc does not listen to (pmc trusts known_hosts, and never updates it): about 1 ms of the
 * manager's CPU per connection, a signature per host key on the node, and a round trip. ssh2
 * has no option to turn this off, so for that one request its handler only replies as ssh2
 * would (OpenSSH never asks for a reply to it). If a later ssh2 moves its handlers, this does
 * nothing and the proof is merely paid for again.
 */
function declineHostKeyProofs(client: Client): void {
  const handlers = (client as unknown as { _protocol?: { _handlers?: Record<string, unknown> } })._protocol?._handlers;
  const handle = handlers?.['GLOBAL_REQUEST'];
  if (!handlers || typeof handle !== 'function') return;
  const original = handle as GlobalRequestHandler;
  handlers['GLOBAL_REQUEST'] = ((protocol, name, wantReply, data) => {
    if (name !== HOSTKEYS_ANNOUNCEMENT) original(protocol, name, wantReply, data);
    else if (wantReply) protocol.requestSuccess();
  }) satisfies GlobalRequestHandler;
}

/**
 * The host key algorithms to offer: those of the key types known_hosts holds for the host,
 * in OpenSSH's order of preference (not the file's: ssh-keyscan writes RSA first). A server
 * can then only show a key pmc can check; one that has none of those types fails the
 * handshake and is reported as a changed identity, as OpenSSH reports it. A host known_hosts
 * knows nothing usable about is offered every algorithm, so that its key and fingerprint can
 * be shown in the unknown-host error.
 */
export function hostKeyAlgorithms(hostKeys: HostKeys): ServerHostKeyAlgorithm[] {
  const types = new Set(plainEntries(hostKeys).map((e) => e.keyType));
  const known = HOST_KEY_ALGORITHMS.filter((algorithm) => types.has(algorithm.startsWith('rsa-sha2-') ? 'ssh-rsa' : algorithm));
  return known.length > 0 ? known : HOST_KEY_ALGORITHMS;
}

/**
 * The command line sent for `command`. A timeout is enforced on the node by coreutils
 * `timeout` (TERM, then KILL after KILL_AFTER_S, to the command's whole process group)
 * because OpenSSH refuses SSH "signal" requests in root sessions (no privilege separation
 * after a root login), and closing the channel does not stop a command without a tty.
 */
export function remoteCommandLine(command: string, sudo: boolean, timeoutMs: number | undefined): string {
  const shell = ['sh', '-c', command];
  const limited = timeoutMs === undefined ? shell : ['timeout', '-k', KILL_AFTER_S, String(timeoutMs / 1000), ...shell];
  if (sudo) return commandLine(['sudo', '-n', '--', ...limited]);
  return timeoutMs === undefined ? command : commandLine(limited);
}

/**
 * Writes the command's input, then EOF, so no command ever waits for input that will not
 * come. A stream is piped with backpressure; if it fails to read, pipeline() closes the
 * channel (the command sees EOF) and the error reaches the StdinWatch. A command that
 * exits before reading all of its input is not a failure (think `head`): the rest of the
 * stream is discarded.
 */
function sendStdin(channel: ClientChannel, stdin: RunOptions['stdin']): void {
  if (stdin === undefined || typeof stdin === 'string' || Buffer.isBuffer(stdin)) channel.end(stdin);
  else pipeline(stdin, channel, () => undefined);
}

/**
 * Listens for a stdin stream's read error from the moment run() is called: the stream may
 * fail (a missing file) while the command still waits for a channel, and an 'error' event
 * nobody listens to would crash pmc.
 */
class StdinWatch {
  error: Error | undefined;

  constructor(stdin: RunOptions['stdin']) {
    if (stdin !== undefined && typeof stdin !== 'string' && !Buffer.isBuffer(stdin)) {
      stdin.on('error', (err: Error) => { this.error ??= err; });
    }
  }
}

export class SshConnection {
  private readonly sessions: Semaphore;
  private readonly log: ((line: string) => void) | undefined;
  private readonly onPhase: PhaseListener | undefined;
  private lastError: Error | undefined;
  private closed = false;

  constructor(private readonly client: Client, readonly target: SshTarget, options: ConnectOptions) {
    this.sessions = new Semaphore(options.maxSessions ?? OPENSSH_MAX_SESSIONS);
    this.log = options.log;
    this.onPhase = options.onPhase;
    client.on('error', (err: Error) => { this.lastError = err; });
    client.on('close', () => { this.closed = true; });
  }

  /**
   * Runs `command` through the user's login shell on the node; with `target.sudo` as
   * `sudo -n -- sh -c <command>`, which never prompts (it fails if sudo wants a password).
   * Resolves with the outcome whatever the exit code; `durationMs` counts from when the
   * command got its turn, not the time spent queued behind other channels. Rejects with
   * PMC_E_NODE_UNREACHABLE if the connection is lost, PMC_E_REMOTE if the server refuses
   * a channel.
   */
  async run(command: string, options: RunOptions = {}): Promise<RemoteResult> {
    const stdinWatch = new StdinWatch(options.stdin);
    const release = await this.sessions.acquire();
    if (stdinWatch.error) {
      release();
      throw this.stdinFailure(stdinWatch.error);
    }
    this.log?.(`[${this.target.name}] $ ${oneLine(command)}`);
    const started = performance.now();
    return new Promise((resolve, reject) => {
      const refused = (err: Error): void => {
        release();
        reject(this.closed ? this.lostError() : new PmcError('PMC_E_REMOTE',
          `${this.target.name}: the server refused a session channel: ${err.message.replace(/^\(SSH\) Channel open failure: /, '')}`,
          `sshd allows MaxSessions channels per connection (default ${OPENSSH_MAX_SESSIONS})`));
      };
      try {
        this.client.exec(remoteCommandLine(command, this.target.sudo, options.timeoutMs), (err, channel) => {
          if (err) {
            refused(err);
            return;
          }
          const openedAt = performance.now();
          this.onPhase?.('channel', started, openedAt);
          if (this.onPhase) channel.once('close', () => this.onPhase?.('transfer', openedAt, performance.now()));
          // Listeners go on right here: a fast command's exit status can come in the same
          // read as the channel confirmation, before any promise continuation would run.
          channel.once('close', () => { void this.serverCaughtUp().then(release); });
          this.collect(channel, command, options, started, stdinWatch).then(resolve, reject);
        });
      } catch (err) {
        refused(err as Error);
      }
    });
  }

  /**
   * Opens a TCP stream from the node to host:port (direct-tcpip), for jumping through it.
   * Not counted against maxSessions: OpenSSH's MaxSessions limits sessions only.
   */
  tunnel(host: string, port: number): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      try {
        this.client.forwardOut('127.0.0.1', 0, host, port, (err, channel) => (err ? reject(err) : resolve(channel)));
      } catch (err) {
        reject(this.closed ? this.lostError() : err);
      }
    });
  }

  /** Disconnects; commands still running are cut off. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.client.once('close', () => resolve());
      this.client.end();
    });
  }

  private stdinFailure(err: Error): PmcError {
    const error = new PmcError('PMC_E_REMOTE', `${this.target.name}: could not send the input of the command: ${err.message}`);
    this.log?.(`[${this.target.name}] ${error.message}`);
    return error;
  }

  private lostError(): PmcError {
    const why = this.lastError ? `: ${this.lastError.message}` : '';
    return new PmcError('PMC_E_NODE_UNREACHABLE', `${this.target.name}: connection to ${endpoint(this.target)} lost${why}`,
      `the node may have rebooted or the network dropped; run the command again`);
  }

  /**
   * Resolves once the server has read everything sent so far. OpenSSH frees a session
   * slot on the main-loop pass after it reads our CHANNEL_CLOSE, so a channel opened right
   * after a close can still be refused by MaxSessions. Only a request that gets a reply
   * tells us it has been read; cancelling a port forward that does not exist is a harmless
   * one (the failure reply is expected and ignored).
   */
  private serverCaughtUp(): Promise<void> {
    return new Promise((resolve) => {
      try {
        this.client.unforwardIn('127.0.0.1', 0, () => resolve());
      } catch {
        // Not connected any more: nothing left to wait for.
        resolve();
      }
    });
  }

  private collect(channel: ClientChannel, command: string, options: RunOptions, started: number, stdinWatch: StdinWatch): Promise<RemoteResult> {
    const name = this.target.name;
    const { timeoutMs } = options;
    return new Promise((resolve, reject) => {
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      let exitCode: number | null = null;
      let signal: string | undefined;
      let settled = false;
      const finish = (gaveUp: boolean): void => {
        if (settled) return;
        settled = true;
        clearTimeout(giveUpTimer);
        const elapsed = performance.now() - started;
        if (!gaveUp && exitCode === null && signal === undefined && this.closed) {
          reject(this.lostError());
          return;
        }
        if (stdinWatch.error) {
          reject(this.stdinFailure(stdinWatch.error));
          return;
        }
        const timedOut = gaveUp || (timeoutMs !== undefined && elapsed >= timeoutMs && TIMEOUT_EXIT_CODES.includes(exitCode));
        const durationMs = Math.round(elapsed);
        const outcome = exitCode !== null ? `exit ${exitCode}` : signal ? `killed by ${signal}` : 'no exit status';
        this.log?.(`[${name}] ${timedOut ? `timed out after ${timeoutMs} ms, ` : ''}${outcome} in ${durationMs} ms`);
        resolve({
          node: name,
          command,
          exitCode,
          signal,
          stdout: Buffer.concat(stdout).toString('utf8'),
          stderr: Buffer.concat(stderr).toString('utf8'),
          durationMs,
          timedOut,
        });
      };
      const giveUpTimer = timeoutMs === undefined ? undefined : setTimeout(() => {
        finish(true);
        channel.close();
      }, timeoutMs + GIVE_UP_AFTER_MS);

      channel.on('data', (chunk: Buffer) => {
        stdout.push(chunk);
        options.onStdout?.(chunk);
      });
      channel.stderr.on('data', (chunk: Buffer) => {
        stderr.push(chunk);
        options.onStderr?.(chunk);
      });
      channel.on('exit', (code: number | null, exitSignal?: string) => {
        exitCode = code;
        signal = exitSignal;
      });
      channel.on('close', () => finish(false));
      sendStdin(channel, options.stdin);
    });
  }
}

/** A multi-line script (the probe) is logged by its first line and its length, not in full. */
function oneLine(command: string): string {
  const lines = command.split('\n');
  return lines.length === 1 ? command : `${lines[0]} … (script of ${lines.length} lines)`;
}

/** A host key seen at first contact, and what the known_hosts files already say of it. */
export interface FirstContact {
  keyBlob: Buffer;
  /** The known_hosts files already trust it (for the host or the node's name). */
  known: boolean;
}

/**
 * First contact with a host that is not a node yet, as OpenSSH's: the host key is recorded and
 * the key exchange completes (the server's signature proves it holds the key), then the
 * connection ends, before any authentication: no credential is offered to a host not trusted
 * yet. A key the known_hosts files already hold is `known`; a key that contradicts them is
 * refused as a connection would refuse it (PMC_E_HOSTKEY_CHANGED).
 */
export async function fetchHostKey(target: SshTarget, options: Pick<ConnectOptions, 'log' | 'knownHosts'> = {}): Promise<FirstContact> {
  const knownHosts = await (options.knownHosts ?? new KnownHostsStore()).load(target.knownHostsFiles);
  const unreadable = unreadableFiles(knownHosts)[0];
  if (unreadable) throw unreadableKnownHostsFailure(target, unreadable.file, unreadable.error!);
  const hostKeys = knownHosts.index.lookup([...new Set([target.host, target.name].map((h) => hostLookupName(h, target.port)))]);
  const keyBlob = await new Promise<Buffer>((resolve, reject) => {
    const client = new ssh2.Client();
    let seen: Buffer | undefined;
    // The promise settles once: whatever the dying client reports after that is ignored.
    const end = (): void => {
      client.on('error', () => undefined);
      client.destroy();
    };
    client.once('handshake', () => {
      end();
      options.log?.(`[${target.name}] host key ${fingerprintSha256(seen!)} recorded at first contact`);
      resolve(seen!);
    });
    client.on('error', (err: Ssh2Error) => { end(); reject(connectFailure(target, err, undefined)); });
    client.on('close', () => reject(connectFailure(target, new Error('connection lost before handshake'), undefined)));
    client.connect({
      host: target.host,
      port: target.port,
      username: target.user,
      readyTimeout: target.connectTimeoutMs,
      algorithms: { kex: KEX_ALGORITHMS, cipher: CIPHER_ALGORITHMS, hmac: MAC_ALGORITHMS, serverHostKey: hostKeyAlgorithms(hostKeys) },
      // No authentication method: the connection ends at the handshake anyway.
      authHandler: () => false,
      hostVerifier: (blob: Buffer): boolean => {
        seen = Buffer.from(blob);
        return true;
      },
    });
  });
  const failure = hostKeyFailure(target, checkServerKey(hostKeys, keyBlob), keyBlob, { via: undefined, hostKeys });
  if (failure && failure.code !== 'PMC_E_HOSTKEY_UNKNOWN') throw failure;
  return { keyBlob, known: failure === undefined };
}
