import { PmcError } from './errors.js';

const GiB = 1024 ** 3;
const FACTORS: Record<string, number> = {
  '': GiB, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2,
  g: GiB, gb: GiB, gib: GiB, t: 1024 ** 4, tb: 1024 ** 4, tib: 1024 ** 4,
};

/** No disk or memory pmc creates is larger (a larger value is a typo, and would lose precision). */
export const MAX_SIZE_BYTES = 1024 ** 5;

/**
 * Parses a size given on the command line. A bare number is GiB (as the old tool's `-s 50 -m 4`);
 * units are binary (`256M` = 256 MiB). Returns bytes.
 */
export function parseSize(input: string | number, what: string): number {
  const text = String(input).trim();
  const m = /^(\d{1,15}(?:\.\d{1,15})?)\s*([a-zA-Z]*)$/.exec(text);
  const factor = m ? FACTORS[m[2]!.toLowerCase()] : undefined;
  if (!m || factor === undefined) {
    throw new PmcError('PMC_E_SIZE_INVALID', `${what} ${JSON.stringify(text)} is not a size`,
      'give a number of GiB (e.g. 4) or a number with a unit: 512M, 20G, 1T');
  }
  const bytes = Math.round(Number(m[1]) * factor);
  if (bytes <= 0) throw new PmcError('PMC_E_SIZE_INVALID', `${what} must be larger than 0`, 'give a positive size such as 1G');
  if (!(bytes <= MAX_SIZE_BYTES)) {
    throw new PmcError('PMC_E_SIZE_INVALID', `${what} ${JSON.stringify(text)} is larger than ${formatBytes(MAX_SIZE_BYTES)}`, 'give a size such as 20G or 2T');
  }
  return bytes;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let i = 0;
  while (Math.abs(value) >= 1024 && i < units.length - 1) { value /= 1024; i++; }
  const digits = i === 0 || value >= 100 || Number.isInteger(value) ? 0 : 1;
  return `${value.toFixed(digits)} ${units[i]}`;
}
