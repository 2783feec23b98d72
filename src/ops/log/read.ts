/**
 * `pmc log`: the audit trail (see engine/audit.ts) read back from the nodes' journals (or,
 * where there is no journalctl, their syslog files), merged in time order.
 */
import { selectNodes } from '../../config/targets.js';
import { PmcError } from '../../util/errors.js';
import { AUDIT_TAG, parseAuditLine } from '../engine/audit.js';
import type { OpContext, Report } from '../engine/context.js';

export interface LogEntry {
  /** ISO 8601, UTC. */
  time: string;
  node: string;
  /** The run's id: the same on every node that run touched. */
  run: string;
  vm: string | undefined;
  /** user@host of the manager that ran it. */
  by: string;
  text: string;
}

export interface LogOptions {
  vm: string | undefined;
  nodes: readonly string[];
  /** As journalctl --since takes it: "2026-12-01 14:00", "today", "-2h". */
  since: string | undefined;
}

/** journalctl's time syntax, without anything a shell or an option parser could take for more. */
const SINCE = /^[0-9A-Za-z][0-9A-Za-z :.+-]{0,39}$|^-[0-9]+[a-z]*$/;

export function logCommand(since: string | undefined): string {
  const sinceArg = since === undefined ? '' : ` ${quoteArg(`--since=${since}`)}`;
  return [
    'if command -v journalctl >/dev/null 2>&1; then',
    `  echo journal; journalctl -q --no-pager -t ${AUDIT_TAG} -o json --output-fields=MESSAGE${sinceArg}`,
    'else',
    `  echo syslog; for f in /var/log/syslog /var/log/messages; do [ -r "$f" ] && grep -h ' ${AUDIT_TAG}\\(\\[[0-9]*\\]\\)\\{0,1\\}: run=' "$f"; done; true`,
    'fi',
  ].join('\n');
}

function quoteArg(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** The entries in one node's answer to logCommand. */
export function parseLogOutput(node: string, output: string): LogEntry[] {
  const [kind, ...lines] = output.split('\n');
  const entries: LogEntry[] = [];
  for (const line of lines) {
    if (!line.trim()) continue;
    let time: string | undefined;
    let message: string | undefined;
    if (kind === 'journal') {
      const record = JSON.parse(line) as { MESSAGE?: unknown; __REALTIME_TIMESTAMP?: string };
      // journald gives a message that is not valid UTF-8 as an array of bytes.
      message = Array.isArray(record.MESSAGE) ? Buffer.from(record.MESSAGE as number[]).toString('utf8') : String(record.MESSAGE ?? '');
      if (record.__REALTIME_TIMESTAMP) time = new Date(Number(BigInt(record.__REALTIME_TIMESTAMP) / 1000n)).toISOString();
    } else {
      // rsyslog's default on Debian: "2026-12-02T08:40:01.123456+00:00 pm-1 pmc: run=...".
      const m = /^(\S+)\s+\S+\s+\S+?:\s(run=.*)$/.exec(line);
      if (m && !Number.isNaN(Date.parse(m[1]!))) {
        time = new Date(m[1]!).toISOString();
        message = m[2];
      }
    }
    const parsed = message === undefined ? undefined : parseAuditLine(message);
    if (time && parsed) entries.push({ time, node, ...parsed });
  }
  return entries;
}

export async function readLog(ctx: OpContext, opts: LogOptions): Promise<Report<LogEntry[]>> {
  if (opts.since !== undefined && !SINCE.test(opts.since)) {
    throw new PmcError('PMC_E_USAGE', `--since ${JSON.stringify(opts.since)}: not a time journalctl understands`, 'e.g. --since "2026-12-01 14:00", --since today, --since=-2h');
  }
  const nodes = selectNodes(ctx.config, opts.nodes).map((n) => n.name);
  const command = logCommand(opts.since);
  const outcomes = await ctx.pool.forEachNode(nodes, async (node) => {
    const result = await ctx.pool.run(node, command, { timeoutMs: 120_000 });
    if (result.exitCode !== 0) {
      throw new PmcError('PMC_E_REMOTE', `${node}: reading the journal failed: ${result.stderr.trim() || `exit ${result.exitCode}`}`);
    }
    return parseLogOutput(node, result.stdout);
  });
  const entries = outcomes.flatMap((o) => (o.ok ? o.value : []))
    .filter((e) => opts.vm === undefined || e.vm === opts.vm)
    .sort((x, y) => x.time.localeCompare(y.time) || x.node.localeCompare(y.node));
  const failed = outcomes.flatMap((o) => (o.ok ? [] : [o.error.message]));
  return { data: entries, status: failed.length ? 'partial' : 'ok', warnings: failed };
}
