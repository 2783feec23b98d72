/**
 * `pmc backup verify [VM]`: re-reads every backup file on the node that holds it, checks its
 * sha256 against the manifest, and decodes every increment against its full image and
 * decompresses every compressed full image (the sha256 of the disk data against the manifest;
 * for the old tool's increments, xdelta3's own checksums). Read-only. Exit 1 when one backup is bad.
 */
import type { OpContext, Report } from '../engine/context.js';
import { readCluster } from '../../model/read.js';
import { assertVmName } from '../../util/names.js';
import { quote } from '../../util/shell.js';
import { sha256Command, type BackupEntry } from './catalog.js';
import { decodeCommand } from './restore-plan.js';
import { readBackups } from './read.js';

export interface VerifyRow {
  vm: string;
  node: string;
  stamp: string;
  path: string;
  /** good: every check passed; bad: one failed; read: readable, but there is no checksum to compare (an old-tool full image). */
  status: 'good' | 'bad' | 'read';
  detail: string;
}

/** How one backup is checked: the command prints `sha256 of the file`, then `sha256 of the decoded data` or a failure. */
export interface VerifyCheck {
  entry: BackupEntry;
  base: BackupEntry | undefined;
  command: string | undefined;
}

/** The check of each backup, as a pure function of the listing. */
export function planVerify(entries: readonly BackupEntry[]): VerifyCheck[] {
  return entries.map((entry) => {
    const base = entry.kind === 'incremental'
      ? entries.find((f) => f.vm === entry.vm && f.node === entry.node && f.kind === 'full' && f.stamp === entry.base)
      : undefined;
    if (entry.kind === 'incremental' && !base) return { entry, base, command: undefined };
    const fileSum = sha256Command(quote(entry.path));
    if (!base && !entry.compression) return { entry, base, command: fileSum };
    // The disk data's sha256; xdelta3 and zstd check their own checksums while decoding.
    const decode = decodeCommand({ target: entry, full: base ?? entry, increment: base ? entry : undefined });
    return {
      entry,
      base,
      command: `${fileSum} && f=$(mktemp) && trap 'rm -f "$f"' EXIT && { { ${decode}; } 2>"$f.err" || echo failed > "$f"; } | ${sha256Command()} && if [ -s "$f" ]; then echo "$(tail -n1 "$f.err")"; rm -f "$f.err"; exit 1; fi; rm -f "$f.err"`,
    };
  });
}

/** Reads a check's output into a verdict. */
export function judge(check: VerifyCheck, exitCode: number | null, stdout: string, stderr: string): VerifyRow {
  const { entry, base } = check;
  const row = (status: VerifyRow['status'], detail: string): VerifyRow => ({ vm: entry.vm, node: entry.node, stamp: entry.stamp, path: entry.path, status, detail });
  if (!check.command) return row('bad', `its full image ${entry.base ?? '(none older)'} is not on ${entry.node}`);
  const decoded = base ? `decoded against ${base.stamp}` : entry.compression ? `decompressed (${entry.compression})` : undefined;
  const [fileSum, dataSum, ...rest] = stdout.trim().split('\n');
  const m = entry.manifest;
  // A file that changed since it was written is the cause; a failed decode is only its symptom.
  if (m && fileSum?.length === 64 && fileSum !== m.file.sha256) return row('bad', `sha256 of the file is ${fileSum}, the manifest says ${m.file.sha256}`);
  if (exitCode !== 0 || !fileSum || fileSum.length !== 64) {
    const why = [...rest, dataSum, stderr.trim().split('\n').at(-1)].find((l) => l && l.length > 0 && l.length !== 64);
    return row('bad', base ? `decoding against ${base.stamp} failed: ${why ?? `exit ${exitCode}`}` : `cannot be read: ${why ?? `exit ${exitCode}`}`);
  }
  if (m && entry.bytes !== m.file.bytes) return row('bad', `the file has ${entry.bytes} bytes, the manifest says ${m.file.bytes}`);
  if (decoded && m && dataSum !== m.data.sha256) return row('bad', `${decoded}, the disk's sha256 is ${dataSum}, the manifest says ${m.data.sha256}`);
  if (!m) {
    if (base) return row('good', `no manifest (old tool): decodes against ${base.stamp} with xdelta3's checksums intact`);
    return entry.compression ? row('good', 'no manifest: decompresses in full with zstd\'s checksum intact')
      : row('read', `no manifest (old tool): read in full, no checksum to compare`);
  }
  return row('good', decoded ? `file and disk data (${decoded}) match the manifest` : 'sha256 matches the manifest');
}

export async function verifyBackups(ctx: OpContext, vm: string | undefined): Promise<Report<VerifyRow[]>> {
  if (vm !== undefined) assertVmName(vm);
  const state = await readCluster(ctx);
  const inventory = await readBackups(ctx, state);
  const checks = planVerify(inventory.entries.filter((e) => vm === undefined || e.vm === vm));
  const byNode = new Map<string, VerifyCheck[]>();
  for (const c of checks) byNode.set(c.entry.node, [...(byNode.get(c.entry.node) ?? []), c]);
  const outcomes = await ctx.pool.forEachNode([...byNode.keys()], async (node) => {
    const rows: VerifyRow[] = [];
    // One file at a time per node: they share the node's disk.
    for (const check of byNode.get(node)!) {
      if (!check.command) {
        rows.push(judge(check, null, '', ''));
        continue;
      }
      ctx.log(`${node}: checking ${check.entry.path}`);
      const result = await ctx.pool.run(node, check.command, { timeoutMs: 6 * 3600_000 });
      rows.push(judge(check, result.exitCode, result.stdout, result.stderr));
    }
    return rows;
  });
  const rows: VerifyRow[] = [];
  const warnings = [...inventory.warnings];
  for (const o of outcomes) {
    if (o.ok) rows.push(...o.value);
    else warnings.push(`${o.node}: not verified: ${o.error.message}`);
  }
  const bad = rows.some((r) => r.status === 'bad');
  return { data: rows, status: bad ? 'failed' : warnings.length > 0 ? 'partial' : 'ok', warnings };
}
