/**
 * The SSH connections of one pmc run: at most one per node (and one per jump host),
 * opened on first use and kept until close(). A node that could not be reached stays
 * unreachable for the rest of the run: its error is remembered, not retried per command,
 * so a read command over ten nodes with one down waits for that node's timeout once.
 * known_hosts and identity files are read and parsed once per run, for every node and jump host.
 */
import type { ClientChannel } from 'ssh2';
import { isPmcError, PmcError } from '../util/errors.js';
import { IdentityStore } from './auth.js';
import { connect, type SshConnection, type SshPhase } from './connection.js';
import { jumpFailure, tunnelFailure, type Ssh2Error } from './failures.js';
import { KnownHostsStore } from './known-hosts.js';
import { Semaphore } from './semaphore.js';
import type { RemoteResult, RunOptions, SshTarget } from './types.js';

export interface SshPoolOptions {
  /** Nodes contacted at once (connection attempts, and forEachNode tasks). Default 16. */
  concurrency?: number;
  /** Session channels open at once per connection. Default 10, OpenSSH's MaxSessions. */
  maxSessions?: number;
  /** --verbose output: `[pm-1] $ <command>`, `[pm-1] exit 0 in 12 ms`, connections. */
  log?: (line: string) => void;
  /** Each connection's and command's phases as they end (see SshPhase); for the fleet benchmark. */
  onPhase?: (node: string, phase: SshPhase, startedAt: number, endedAt: number) => void;
}

/** What happened on one node of a fan-out: its value, or why it could not be reached. */
export type NodeOutcome<T> =
  | { node: string; ok: true; value: T }
  | { node: string; ok: false; error: PmcError };

const DEFAULT_CONCURRENCY = 16;

export class SshPool {
  private readonly targets = new Map<string, SshTarget>();
  private readonly connections = new Map<string, Promise<SshConnection>>();
  /** Keyed by user@host:port, so nodes behind the same jump host share its connection. */
  private readonly jumps = new Map<string, Promise<SshConnection>>();
  private readonly connectSlots: Semaphore;
  private readonly concurrency: number;
  private readonly knownHosts = new KnownHostsStore();
  private readonly identities = new IdentityStore();

  constructor(targets: readonly SshTarget[], private readonly options: SshPoolOptions = {}) {
    for (const target of targets) this.targets.set(target.name, target);
    this.concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
    this.connectSlots = new Semaphore(this.concurrency);
  }

  /**
   * Runs a command on a node, connecting first if this run has not yet. A non-zero exit
   * is a result; a node that cannot be reached rejects with its PmcError.
   */
  async run(node: string, command: string, options?: RunOptions): Promise<RemoteResult> {
    const connection = await this.connection(node);
    return connection.run(command, options);
  }

  /** Connects to the nodes (default: all) in parallel; undefined means connected. */
  async connectAll(nodes: readonly string[] = [...this.targets.keys()]): Promise<Map<string, PmcError | undefined>> {
    const outcomes = await this.forEachNode(nodes, async (node) => { await this.connection(node); });
    return new Map(outcomes.map((o) => [o.node, o.ok ? undefined : o.error]));
  }

  /**
   * Runs `task` for every node, at most `concurrency` at once, and returns one outcome
   * per node in the order given. A PmcError thrown by a task (an unreachable node, or
   * any other user error) becomes that node's outcome; anything else is a bug and is
   * rethrown once every task has settled.
   */
  async forEachNode<T>(nodes: readonly string[], task: (node: string) => Promise<T>): Promise<NodeOutcome<T>[]> {
    const slots = new Semaphore(this.concurrency);
    const settled = await Promise.allSettled(nodes.map((node) => slots.use(() => task(node))));
    const bug = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected' && !isPmcError(s.reason));
    if (bug) throw bug.reason;
    return settled.map((s, i): NodeOutcome<T> => {
      const node = nodes[i]!;
      return s.status === 'fulfilled' ? { node, ok: true, value: s.value } : { node, ok: false, error: s.reason as PmcError };
    });
  }

  /** Closes every connection of the run. */
  async close(): Promise<void> {
    const close = async (pending: Iterable<Promise<SshConnection>>): Promise<void> => {
      await Promise.allSettled([...pending].map(async (p) => (await p).close()));
    };
    await close(this.connections.values());
    await close(this.jumps.values());
  }

  /** The node's connection, opened once per run; a failure is remembered as well. */
  private connection(node: string): Promise<SshConnection> {
    let pending = this.connections.get(node);
    if (!pending) {
      const target = this.targets.get(node);
      if (!target) {
        return Promise.reject(new PmcError('PMC_E_NODE_UNKNOWN', `node ${JSON.stringify(node)} is not configured`,
          `known nodes: ${[...this.targets.keys()].join(', ')}`));
      }
      pending = this.connectSlots.use(() => this.open(target));
      this.connections.set(node, pending);
    }
    return pending;
  }

  private async open(target: SshTarget): Promise<SshConnection> {
    const { onPhase } = this.options;
    const connectOptions = {
      maxSessions: this.options.maxSessions,
      log: this.options.log,
      knownHosts: this.knownHosts,
      identities: this.identities,
      onPhase: onPhase && ((phase: SshPhase, startedAt: number, endedAt: number) => onPhase(target.name, phase, startedAt, endedAt)),
    };
    if (!target.jump) return connect(target, connectOptions);
    const via = target.jump;
    let jump: SshConnection;
    try {
      // Not under connectSlots: every node behind this jump host may be holding a slot while waiting for it.
      jump = await this.jumpConnection(via);
    } catch (err) {
      throw isPmcError(err) ? jumpFailure(target, err) : err;
    }
    let sock: ClientChannel;
    try {
      sock = await jump.tunnel(target.host, target.port);
    } catch (err) {
      throw isPmcError(err) ? jumpFailure(target, err) : tunnelFailure(target, via, err as Ssh2Error);
    }
    return connect(target, { ...connectOptions, sock, via });
  }

  private jumpConnection(via: SshTarget): Promise<SshConnection> {
    const key = `${via.user}@${via.host}:${via.port}`;
    let pending = this.jumps.get(key);
    if (!pending) {
      pending = connect(via, { maxSessions: this.options.maxSessions, log: this.options.log, knownHosts: this.knownHosts, identities: this.identities });
      this.jumps.set(key, pending);
    }
    return pending;
  }
}
