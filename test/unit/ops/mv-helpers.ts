/**
 * What the migration tests share (vm mv, pm evacuate): test-vm as libvirt describes it (the
 * real `virsh dumpxml --inactive` of test/fixtures/real), running on one node of its DRBD pair.
 */
import { readFileSync } from 'node:fs';
import { parseDomainXml } from '../../../src/probe/parsers/virsh.js';
import type { Domain, NodeFacts } from '../../../src/probe/types.js';
import { domain, lv, peer, resource } from '../model/factory.js';

export const XML = readFileSync(new URL('../../fixtures/real/virsh-dumpxml.inactive.xml', import.meta.url), 'utf8');
export const UUID = 'd2fd4e59-ee6a-4d1e-aee0-f5ae227a41ab';

/** test-vm as libvirt describes it (the real XML), in the given state on a node. */
export function realDomain(state: Domain['state'], xml = XML, reason?: string): Domain {
  const def = parseDomainXml(xml).value!;
  return { ...domain(def.name, state), ...def, xml, ...(reason ? { stateReason: reason } : {}) };
}

/** test-vm running on `source` (Primary), defined on `target` (Secondary), UpToDate/UpToDate. */
export function running(source = 'pm-1', target = 'pm-2'): Record<string, Partial<NodeFacts>> {
  const hosts: [string, string] = ['pm-1', 'pm-2'];
  return {
    [source]: {
      domains: [realDomain('running')],
      drbdResources: [resource('test-vm', source, hosts, 10, { role: 'Primary', peers: [peer(target)] })],
      lvs: [lv('test-vm')],
    },
    [target]: {
      domains: [realDomain('shut off')],
      drbdResources: [resource('test-vm', target, hosts, 10, { peers: [peer(source, { role: 'Primary' })] })],
      lvs: [lv('test-vm')],
    },
  };
}

/** Sets fields of test-vm's resource on one node. */
export function withResource(parts: Record<string, Partial<NodeFacts>>, node: string, change: Partial<ReturnType<typeof resource>>) {
  parts[node]!.drbdResources = [{ ...parts[node]!.drbdResources![0]!, ...change }];
  return parts;
}
