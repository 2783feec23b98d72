/**
 * `pmc backup ls [VM]`: every backup of every VM on every node that answers.
 */
import type { OpContext, Report } from '../engine/context.js';
import { readCluster } from '../../model/read.js';
import { assertVmName } from '../../util/names.js';
import { isoOfStamp, type BackupEntry, type Compression } from './catalog.js';
import { readBackups } from './read.js';

export interface BackupRow {
  vm: string;
  node: string;
  stamp: string;
  time: string;
  type: 'full' | 'incremental';
  /** zstd for a `.base.zst`. */
  compression: Compression | undefined;
  path: string;
  bytes: number;
  /** For an increment: the full image it needs. */
  needs: string | undefined;
  /** `3d 4h`: how long ago it was taken. */
  age: string;
  /** crash-consistent, file-systems-frozen, or "not verified" for the old tool's backups (no manifest). */
  consistency: string;
  dataBytes: number | undefined;
  dataSha256: string | undefined;
  /** Why it may not restore (a missing full image, an unreadable manifest). */
  problem: string | undefined;
}

export async function listBackups(ctx: OpContext, vm: string | undefined, now = new Date()): Promise<Report<BackupRow[]>> {
  if (vm !== undefined) assertVmName(vm);
  const state = await readCluster(ctx);
  const inventory = await readBackups(ctx, state);
  const rows = inventory.entries.filter((e) => vm === undefined || e.vm === vm).map((e) => backupRow(inventory.entries, e, now));
  rows.sort((a, b) => a.vm.localeCompare(b.vm) || a.stamp.localeCompare(b.stamp) || a.node.localeCompare(b.node));
  return { data: rows, status: inventory.warnings.length > 0 ? 'partial' : 'ok', warnings: inventory.warnings };
}

export function backupRow(entries: readonly BackupEntry[], e: BackupEntry, now: Date): BackupRow {
  const missingBase = e.kind === 'incremental'
    && !entries.some((f) => f.vm === e.vm && f.node === e.node && f.kind === 'full' && f.stamp === e.base);
  return {
    vm: e.vm,
    node: e.node,
    stamp: e.stamp,
    time: isoOfStamp(e.stamp),
    type: e.kind,
    compression: e.compression,
    path: e.path,
    bytes: e.bytes,
    needs: e.base,
    age: age(now.getTime() - Date.parse(isoOfStamp(e.stamp))),
    consistency: e.manifest?.consistency ?? 'not verified',
    dataBytes: e.manifest?.data.bytes,
    dataSha256: e.manifest?.data.sha256,
    problem: e.manifestProblem
      ?? (missingBase ? `its full image ${e.base ?? '(none older)'} is not on ${e.node}: it cannot be restored there` : undefined),
  };
}

function age(ms: number): string {
  const minutes = Math.max(0, Math.floor(ms / 60_000));
  if (minutes < 60) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h ${minutes % 60}m`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}
