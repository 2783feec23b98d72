import type { Vm } from '../../model/cluster.js';
import { PmcError } from '../../util/errors.js';

/** VMs named with the ignore prefix are shown but never changed (cherrypop's rule). */
export function assertNotIgnored(vm: Pick<Vm, 'name' | 'ignored'>, ignorePrefix: string): void {
  if (vm.ignored) {
    throw new PmcError('PMC_E_VM_IGNORED', `${vm.name} starts with the ignore prefix "${ignorePrefix}"; pmc does not change it`,
      'rename the domain, or change ignorePrefix in pmc.yaml if this VM should be managed');
  }
}
