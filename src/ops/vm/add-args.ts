/**
 * The arguments of `pmc vm add`, checked from the command line alone (no file, no node), so
 * the CLI can refuse a bad one before it reads pmc.yaml or connects anywhere. Kept apart from
 * add.ts so that this check loads nothing heavy.
 */
import { PmcError } from '../../util/errors.js';
import { assertVmName } from '../../util/names.js';
import { parseIp, parseMac } from '../../util/network.js';
import { parseSize } from '../../util/units.js';
import { assertVmReference, parseWholeNumber } from '../../util/validate.js';
import type { VmAddRequest } from './add-plan.js';

/** vCPUs of one VM: libvirt and QEMU accept far more, but more than this is a typo. */
export const MAX_VCPUS = 1024;

/** The command line of `pmc vm add`, as yargs parsed it. */
export interface VmAddArgs {
  vm: string;
  pm?: string[];
  size: string;
  memory: string;
  cpus: number | string;
  iso?: string;
  ip?: string;
  mac?: string;
  clone?: string;
  from?: string;
  image?: string;
  start: boolean;
  force: boolean;
  shared: boolean;
  dryRun: boolean;
}

/** Checks everything the command line alone can tell, before any node is asked. */
export function parseVmAddArgs(args: VmAddArgs): VmAddRequest {
  const name = assertVmName(args.vm);
  const vcpus = parseWholeNumber(args.cpus, '-c', 1, MAX_VCPUS, 'vCPUs');
  if (args.image !== undefined && args.clone !== undefined) {
    throw new PmcError('PMC_E_USAGE', '--image and --clone both name what the disk starts with: give one', 'pmc vm add --image debian-12.qcow2 ... or pmc vm add --clone web-1 ...');
  }
  if (args.from !== undefined && args.clone === undefined) {
    throw new PmcError('PMC_E_USAGE', '--from names the node to clone from, but --clone is missing', 'pmc vm add --clone web-1 --from pm-2 ...');
  }
  return {
    name,
    nodes: args.pm ?? [],
    sizeBytes: parseSize(args.size, 'disk size (-s)'),
    memoryBytes: parseSize(args.memory, 'memory (-m)'),
    vcpus,
    iso: args.iso === undefined ? undefined : isoFileName(args.iso),
    ip: args.ip === undefined ? undefined : parseIp(args.ip),
    mac: args.mac === undefined ? undefined : parseMac(args.mac),
    clone: args.clone === undefined ? undefined : { vm: assertVmReference(args.clone), from: args.from },
    image: args.image === undefined ? undefined : storeFileName(args.image, '--image', 'PMC_E_IMAGE_UNKNOWN', 'imageStore'),
    start: args.start,
    force: args.force,
    shared: args.shared,
  };
}

/** `-i ubuntu-2020` means ubuntu-2020.iso in the ISO store; never a path, never an option. */
function isoFileName(input: string): string {
  return storeFileName(input.endsWith('.iso') ? input : `${input}.iso`, '-i', 'PMC_E_ISO_UNKNOWN', 'isoStore', input);
}

/** A file of one of the manager's stores, by name: never a path, never an option. */
function storeFileName(file: string, option: string, code: 'PMC_E_ISO_UNKNOWN' | 'PMC_E_IMAGE_UNKNOWN', key: string, given = file): string {
  if (!/^[A-Za-z0-9_+][A-Za-z0-9._+-]*$/.test(file)) {
    throw new PmcError(code, `${option} ${JSON.stringify(given)}: name a file of the store (${key} in pmc.yaml), not a path`,
      option === '-i' ? 'e.g. -i ubuntu-2020 for ubuntu-2020.iso in the ISO store (isoStore in pmc.yaml)' : `e.g. ${option} debian-12.qcow2 for that file in the image store (${key} in pmc.yaml)`);
  }
  return file;
}
