/**
 * The cluster lock: a mutating command holds, on every node it will touch, an flock on
 * LOCK_FILE, taken by a shell that runs on the node for as long as the command does, on its
 * own SSH channel. Nothing is left behind by a manager that dies: its connection closes, the
 * holder reads EOF on stdin and exits, and the kernel drops the lock. A manager that vanishes
 * without closing the connection (its network cut) stops sending the heartbeat, and the
 * holder gives the lock up after LEASE_S.
 *
 * Nodes are locked one after another in name order, so two runs that want overlapping nodes
 * never hold one each while waiting for the other's.
 */
import { PassThrough } from 'node:stream';
import type { RemoteResult } from '../../ssh/types.js';
import { isPmcError, PmcError } from '../../util/errors.js';
import { quote } from '../../util/shell.js';
import type { OpContext } from './context.js';
import { describeFailure } from './execute.js';

/** On tmpfs (/var/lock links here on Debian): a reboot frees it, as it should. */
export const LOCK_DIR = '/run/lock';

/** Seconds a holder waits for the manager's heartbeat before it gives the lock up. */
const LEASE_S = 60;
const HEARTBEAT_MS = 15_000;

/** Exit codes of the lock script: waited in vain, or the manager went away while waiting. */
const EXIT_TIMED_OUT = 75;
const EXIT_MANAGER_GONE = 76;

/**
 * The shell that takes and holds the lock. Waiting, it says once who holds it ("busy ...");
 * holding, it records who it is in the holder file, says "locked", then reads heartbeat lines
 * until EOF (the manager released it or died) or LEASE_S of silence. `timeout ... head` reads
 * stdin with a bound where dash's `read` has none; fd 9 (the lock) is closed for them so that
 * nothing but this shell keeps the lock.
 */
export function lockScript(dir: string, holder: string, waitSeconds: number): string {
  const lock = quote(`${dir}/pmc.lock`);
  const info = quote(`${dir}/pmc.holder`);
  return [
    `exec 9>>${lock} || exit 70`,
    `end=$(( $(date +%s) + ${waitSeconds} ))`,
    'said=',
    'until flock -w 1 9; do',
    `  [ -n "$said" ] || { said=1; printf 'busy %s\\n' "$(cat ${info} 2>/dev/null)"; }`,
    `  [ "$(date +%s)" -lt "$end" ] || { printf 'held %s\\n' "$(cat ${info} 2>/dev/null)"; exit ${EXIT_TIMED_OUT}; }`,
    `  if line=$(timeout 0.2 head -n 1 9>&-); then [ -n "$line" ] || exit ${EXIT_MANAGER_GONE}; fi`,
    'done',
    `printf '%s since %s\\n' ${quote(holder)} "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > ${info}`,
    'echo locked',
    `while line=$(timeout ${LEASE_S} head -n 1 9>&-) && [ -n "$line" ]; do :; done`,
  ].join('\n');
}

/** The locks one run holds. */
export interface NodeLocks {
  /** Nodes locked, in the order they were locked. */
  nodes: string[];
  /** Nodes that could not be reached to be locked (the state read shows them as unreachable). */
  unreachable: string[];
  /** Nodes whose holder went away while the run held the lock (connection lost), with why. */
  lost(): string[];
  release(): Promise<void>;
}

interface Holder {
  node: string;
  stdin: PassThrough;
  heartbeat: NodeJS.Timeout;
  ended: Promise<RemoteResult | PmcError>;
  released: boolean;
  lostWhy: string | undefined;
}

export interface LockOptions {
  /** The directory of the lock file on each node (tests that play several nodes on one machine use one each). */
  dir?: (node: string) => string;
}

/**
 * Locks `nodes` (sorted by name) for this run, waiting up to ctx.waitLockSeconds in all, and
 * saying whom it waits for. Rejects with PMC_E_LOCKED naming the holder when the wait runs
 * out, PMC_E_INTERRUPTED on Ctrl-C; in both cases nothing is left locked.
 */
export async function lockNodes(ctx: Pick<OpContext, 'pool' | 'log' | 'stop' | 'invocation' | 'waitLockSeconds'>, nodes: readonly string[], opts: LockOptions = {}): Promise<NodeLocks> {
  const holders: Holder[] = [];
  const unreachable: string[] = [];
  const deadline = Date.now() + ctx.waitLockSeconds * 1000;
  const me = `${ctx.invocation.who} pid ${ctx.invocation.pid}: ${ctx.invocation.command}`;
  const release = async (): Promise<void> => {
    await Promise.all(holders.map(async (h) => {
      h.released = true;
      clearInterval(h.heartbeat);
      h.stdin.end();
      await h.ended;
    }));
  };
  try {
    for (const node of [...new Set(nodes)].sort()) {
      const waitSeconds = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
      const holder = await lockOne(ctx, node, lockScript(opts.dir?.(node) ?? LOCK_DIR, me, waitSeconds), waitSeconds);
      if (holder) holders.push(holder);
      else unreachable.push(node);
    }
  } catch (err) {
    await release();
    throw err;
  }
  return {
    nodes: holders.map((h) => h.node),
    unreachable,
    lost: () => holders.filter((h) => h.lostWhy).map((h) => `${h.node}: ${h.lostWhy}`),
    release,
  };
}

/** One node's lock; undefined when the node cannot be reached at all. */
async function lockOne(ctx: Pick<OpContext, 'pool' | 'log' | 'stop'>, node: string, script: string, waitSeconds: number): Promise<Holder | undefined> {
  const stdin = new PassThrough();
  let output = '';
  let onLocked: () => void = () => undefined;
  const locked = new Promise<void>((resolve) => { onLocked = resolve; });
  const ended = ctx.pool.run(node, script, {
    stdin,
    onStdout: (chunk) => {
      output += chunk.toString('utf8');
      let newline: number;
      while ((newline = output.indexOf('\n')) >= 0) {
        const line = output.slice(0, newline);
        output = output.slice(newline + 1);
        if (line === 'locked') onLocked();
        else if (line.startsWith('busy ')) {
          ctx.log(`${node}: waiting up to ${waitSeconds} s for the pmc lock, held by ${describeHolder(line.slice(5))}`);
        }
      }
    },
  }).catch((err: unknown) => {
    if (isPmcError(err)) return err;
    throw err;
  });
  // Ctrl-C while waiting: EOF makes the node give up waiting at once.
  const unlisten = ctx.stop.onRequest(() => stdin.end());
  const heartbeat = setInterval(() => stdin.write('alive\n'), HEARTBEAT_MS);
  heartbeat.unref();
  const first = await Promise.race([locked.then(() => 'locked' as const), ended]);
  unlisten();
  if (first === 'locked') {
    const holder: Holder = { node, stdin, heartbeat, ended, released: false, lostWhy: undefined };
    void ended.then((end) => {
      if (!holder.released) {
        holder.lostWhy = end instanceof PmcError ? end.message : `the lock holder ended (${describeFailure(end)})`;
        ctx.log(`${node}: the pmc lock was lost: ${holder.lostWhy}`);
      }
    });
    return holder;
  }
  clearInterval(heartbeat);
  stdin.end();
  if (first instanceof PmcError) {
    if (first.code === 'PMC_E_NODE_UNREACHABLE') return undefined;
    throw first;
  }
  if (ctx.stop.level !== 'none') {
    throw new PmcError('PMC_E_INTERRUPTED', `${ctx.stop.reason ?? 'interrupted'} while waiting for the pmc lock on ${node}; nothing was changed`);
  }
  if (first.exitCode === EXIT_TIMED_OUT) {
    const held = first.stdout.split('\n').filter((l) => l.startsWith('held ')).at(-1)?.slice(5) ?? '';
    throw new PmcError('PMC_E_LOCKED', `${node} is locked by ${describeHolder(held)}; waited ${waitSeconds} s, nothing was changed`,
      'wait until that run ends and try again, or give it longer with --wait-lock SECONDS');
  }
  throw new PmcError('PMC_E_REMOTE', `${node}: could not take the pmc lock (${describeFailure(first)}); nothing was changed`,
    `the node needs flock (util-linux) and timeout (coreutils), and a writable ${LOCK_DIR}`);
}

function describeHolder(text: string): string {
  return text.trim() || 'another pmc run (it has not said who it is yet)';
}
