import type { Parsed } from '../types.js';

export interface DrbdadmVersion {
  /** `DRBDADM_VERSION=9.22.0` */
  utilsVersion: string | undefined;
  /**
   * The kernel module drbd-utils talks to (`DRBD_KERNEL_VERSION`, or decoded from
   * `DRBD_KERNEL_VERSION_CODE=0x08040b`); absent when the module is not loaded.
   */
  kernelVersion: string | undefined;
}

/** Parses `drbdadm --version`: shell-style `KEY=value` lines. */
export function parseDrbdadmVersion(text: string): Parsed<DrbdadmVersion> {
  const values = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) values.set(m[1]!, m[2]!);
  }
  const code = values.get('DRBD_KERNEL_VERSION_CODE');
  const kernelVersion = values.get('DRBD_KERNEL_VERSION')
    ?? (code !== undefined && code !== '0x000000' ? versionFromCode(code) : undefined);
  const utilsVersion = values.get('DRBDADM_VERSION');
  const problems = utilsVersion === undefined ? ['drbdadm --version: no DRBDADM_VERSION line'] : [];
  return { value: { utilsVersion, kernelVersion }, problems };
}

/** `0x08040b` -> `8.4.11`: DRBD packs major, minor and patch level into one byte each. */
export function versionFromCode(code: string): string | undefined {
  if (!/^0x[0-9a-fA-F]{1,6}$/.test(code)) return undefined;
  const n = Number.parseInt(code.slice(2), 16);
  return `${(n >> 16) & 0xff}.${(n >> 8) & 0xff}.${n & 0xff}`;
}

/** The first line of /proc/drbd, `version: 8.4.11 (api:1/proto:86-101)` -> `8.4.11`. */
export function parseProcDrbdVersionLine(line: string): string | undefined {
  return /^version:\s*(\S+)/.exec(line.trim())?.[1];
}
