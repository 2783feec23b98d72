import { PmcError } from './errors.js';

/**
 * VM names become LV names, DRBD resource names, libvirt domain names and file names
 * (/etc/drbd.d/<vm>.res). `[a-z0-9-]`, starting with a letter or digit; 48 characters keeps
 * them clear of every one of those limits (LVM allows 127 with its prefixes, DRBD resource
 * names are file names, libvirt has no tighter limit).
 */
export const VM_NAME_MAX = 48;
const VM_NAME = /^[a-z0-9][a-z0-9-]*$/;
/** `drbdadm up all` means every resource; LVM keeps these LV names for itself. */
const RESERVED_VM_NAMES = new Set(['all', 'snapshot', 'pvmove']);

export function vmNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if (name.length > VM_NAME_MAX) return `is ${name.length} characters long (at most ${VM_NAME_MAX})`;
  if (!VM_NAME.test(name)) return 'may only contain a-z, 0-9 and "-", and must not start with "-"';
  if (RESERVED_VM_NAMES.has(name)) return 'is reserved (drbdadm or LVM give it a meaning of its own)';
  return undefined;
}

export function assertVmName(name: string): string {
  const problem = vmNameProblem(name);
  if (problem) {
    throw new PmcError('PMC_E_NAME_INVALID', `VM name ${JSON.stringify(name)} ${problem}`,
      'choose a name like "web-1": lower-case letters, digits and dashes');
  }
  return name;
}

/** Node names are host names: RFC 1123 labels separated by dots. */
const NODE_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export function isNodeName(name: string): boolean {
  return NODE_NAME.test(name);
}
