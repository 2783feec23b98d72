import { z } from 'zod';
import type { LogicalVolume, Parsed, VolumeGroup } from '../types.js';

/** `vgs`/`lvs --reportformat json`: every value is a string, whatever the column. */
const report = (key: 'vg' | 'lv') =>
  z.object({ report: z.array(z.object({ [key]: z.array(z.record(z.string(), z.string())) })) });

/** Made once: zod builds (and compiles) a schema's checks when it is made, which costs more than a node's report. */
const REPORTS = { vg: report('vg'), lv: report('lv') };

/** With `--units b --nosuffix` sizes are plain byte counts; tolerate the `B` suffix anyway. */
function bytes(value: string | undefined): number | undefined {
  const m = /^(\d+)B?$/.exec(value ?? '');
  return m ? Number(m[1]) : undefined;
}

function rows(text: string, key: 'vg' | 'lv', what: string): Parsed<Record<string, string>[]> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { value: [], problems: [`${what}: not JSON (${(err as Error).message})`] };
  }
  const plain = plainRows(json, key);
  if (plain) return { value: plain, problems: [] };
  const checked = REPORTS[key].safeParse(json);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    return { value: [], problems: [`${what}: unexpected JSON at ${issue?.path.join('.') || 'top'}: ${issue?.message}`] };
  }
  return { value: checked.data.report.flatMap((r) => r[key] ?? []), problems: [] };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The rows of a report that has the shape REPORTS[key] checks, else undefined. A plain walk
 * costs a fraction of zod's check (the probe asks it of every node, twice: vgs and lvs are both
 * read from one fullreport), so zod is only asked to word what is wrong with a report.
 */
function plainRows(json: unknown, key: 'vg' | 'lv'): Record<string, string>[] | undefined {
  if (!isRecord(json) || !Array.isArray(json['report'])) return undefined;
  const found: Record<string, string>[] = [];
  for (const entry of json['report'] as unknown[]) {
    const list = isRecord(entry) ? entry[key] : undefined;
    if (!Array.isArray(list)) return undefined;
    for (const row of list as unknown[]) {
      if (!isRecord(row) || !Object.values(row).every((v) => typeof v === 'string')) return undefined;
      found.push(row as Record<string, string>);
    }
  }
  return found;
}

/**
 * Parses `vgs --reportformat json --units b --nosuffix [-o ...] <vg>` and returns the named VG
 * (undefined, with a problem, when the report does not contain it).
 */
export function parseVgsJson(text: string, vgName: string): Parsed<VolumeGroup | undefined> {
  const { value, problems } = rows(text, 'vg', 'vgs');
  const row = value.find((r) => r['vg_name'] === vgName);
  if (!row) {
    if (problems.length === 0) problems.push(`vgs: volume group ${vgName} not in the report`);
    return { value: undefined, problems };
  }
  const sizeBytes = bytes(row['vg_size']);
  const freeBytes = bytes(row['vg_free']);
  if (sizeBytes === undefined || freeBytes === undefined) {
    return { value: undefined, problems: [`vgs: ${vgName}: size ${row['vg_size']} / free ${row['vg_free']} are not byte counts`] };
  }
  return { value: { name: vgName, sizeBytes, freeBytes, extentSizeBytes: bytes(row['vg_extent_size']) }, problems };
}

/** Parses `lvs --reportformat json --units b --nosuffix [-o ...] <vg>`. */
export function parseLvsJson(text: string): Parsed<LogicalVolume[]> {
  const { value, problems } = rows(text, 'lv', 'lvs');
  const lvs: LogicalVolume[] = [];
  for (const row of value) {
    const name = row['lv_name'];
    const vgName = row['vg_name'];
    const sizeBytes = bytes(row['lv_size']);
    if (!name || !vgName || sizeBytes === undefined) {
      problems.push(`lvs: row without name, VG or byte size: ${JSON.stringify(row)}`);
      continue;
    }
    // lv_attr: [4] is the state (a = active), [5] is the open flag (o = open).
    const attr = row['lv_attr'] ?? '';
    lvs.push({
      name,
      vgName,
      path: `/dev/${vgName}/${name}`,
      sizeBytes,
      attr,
      active: attr[4] === 'a',
      open: attr[5] === 'o',
      origin: row['origin'] || undefined,
    });
  }
  return { value: lvs, problems };
}
