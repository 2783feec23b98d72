// main's virsh parser as of 58ae3de, kept verbatim as the oracle the
// rewritten parser in src/probe/parsers/virsh.ts is compared with (test/unit/probe/same-as-main.test.ts).
import { DOMParser, type Element } from '@xmldom/xmldom';
import type {
  DomainDisk, DomainInterface, DomainState, LibvirtVersion, Parsed, VirshNodeInfo,
} from '../../../../src/probe/types.js';

/** What the domain XML says (the rest of `Domain` comes from dominfo and domstate). */
export interface DomainDefinition {
  name: string;
  uuid: string;
  memoryBytes: number;
  vcpus: number;
  disks: DomainDisk[];
  interfaces: DomainInterface[];
}

/** libvirt's memory units (`unit='KiB'` is the default); KB, MB... are decimal. */
const MEMORY_UNITS: Record<string, number> = {
  b: 1, bytes: 1,
  kb: 1e3, k: 1024, kib: 1024,
  mb: 1e6, m: 1024 ** 2, mib: 1024 ** 2,
  gb: 1e9, g: 1024 ** 3, gib: 1024 ** 3,
  tb: 1e12, t: 1024 ** 4, tib: 1024 ** 4,
};

const DOMAIN_STATES: readonly DomainState[] = [
  'running', 'idle', 'paused', 'in shutdown', 'shut off', 'crashed', 'pmsuspended', 'no state',
];

function asDomainState(word: string): DomainState | undefined {
  return (DOMAIN_STATES as readonly string[]).includes(word) ? (word as DomainState) : undefined;
}

/** Parses `virsh dumpxml [--inactive] <domain>`. */
export function parseDomainXml(xml: string): Parsed<DomainDefinition | undefined> {
  const problems: string[] = [];
  let error: string | undefined;
  let root: Element | null;
  try {
    const parser = new DOMParser({
      onError: (level, message) => {
        if (level === 'warning') {
          problems.push(`domain XML: ${message}`);
          return;
        }
        error ??= message;
        throw new Error(message);
      },
    });
    root = parser.parseFromString(xml, 'text/xml').documentElement;
  } catch (err) {
    // xmldom wraps the handler's error in its own; the first message is the useful one.
    return { value: undefined, problems: [`domain XML: ${error ?? (err as Error).message}`] };
  }
  if (!root || root.nodeName !== 'domain') {
    return { value: undefined, problems: [`domain XML: root element is ${root?.nodeName ?? 'missing'}, not domain`] };
  }

  const name = text(child(root, 'name'));
  const uuid = text(child(root, 'uuid'));
  const memory = child(root, 'memory');
  const vcpu = child(root, 'vcpu');
  const memoryBytes = memory ? memoryToBytes(text(memory), memory.getAttribute('unit')) : undefined;
  const vcpus = Number(vcpu?.getAttribute('current') || text(vcpu));
  if (!name || !uuid || memoryBytes === undefined || !Number.isInteger(vcpus) || vcpus <= 0) {
    return {
      value: undefined,
      problems: [...problems, `domain XML: missing or invalid name/uuid/memory/vcpu (name ${JSON.stringify(name)})`],
    };
  }

  const devices = child(root, 'devices');
  const disks = children(devices, 'disk').map((disk): DomainDisk => {
    const source = child(disk, 'source');
    const target = child(disk, 'target');
    return {
      device: disk.getAttribute('device') || 'disk',
      type: disk.getAttribute('type') || 'file',
      source: attributeOf(source, 'dev', 'file', 'name', 'volume'),
      target: target?.getAttribute('dev') ?? '',
      bus: target?.getAttribute('bus') || undefined,
    };
  });
  const interfaces = children(devices, 'interface').map((nic): DomainInterface => {
    const source = child(nic, 'source');
    return {
      type: nic.getAttribute('type') ?? '',
      mac: child(nic, 'mac')?.getAttribute('address') || undefined,
      bridge: source?.getAttribute('bridge') || undefined,
      network: source?.getAttribute('network') || undefined,
      model: child(nic, 'model')?.getAttribute('type') || undefined,
    };
  });
  return { value: { name, uuid, memoryBytes, vcpus, disks, interfaces }, problems };
}

export function memoryToBytes(value: string, unit: string | null): number | undefined {
  const factor = MEMORY_UNITS[(unit || 'KiB').toLowerCase()];
  if (factor === undefined || !/^\d+$/.test(value.trim())) return undefined;
  return Number(value.trim()) * factor;
}

function children(parent: Element | undefined, tag: string): Element[] {
  const found: Element[] = [];
  if (!parent) return found;
  for (let node = parent.firstChild; node; node = node.nextSibling) {
    if (node.nodeType === node.ELEMENT_NODE && node.nodeName === tag) found.push(node as Element);
  }
  return found;
}

/** Direct children only: `<metadata>` may hold other applications' elements of the same name. */
function child(parent: Element | undefined, tag: string): Element | undefined {
  return children(parent, tag)[0];
}

function text(element: Element | undefined): string {
  return element?.textContent?.trim() ?? '';
}

function attributeOf(element: Element | undefined, ...names: string[]): string | undefined {
  for (const name of names) {
    const value = element?.getAttribute(name);
    if (value) return value;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// The `Key:   value` reports

function keyValueLines(text: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) map.set(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  return map;
}

function integer(value: string | undefined): number | undefined {
  const m = /^(\d+)/.exec(value ?? '');
  return m ? Number(m[1]) : undefined;
}

export interface Dominfo {
  name: string | undefined;
  uuid: string | undefined;
  state: DomainState | undefined;
  vcpus: number | undefined;
  maxMemoryBytes: number | undefined;
  persistent: boolean | undefined;
  autostart: boolean | undefined;
}

/** Parses `virsh dominfo <domain>` (`Autostart: disable`, `Max memory: 65536 KiB`, ...). */
export function parseDominfo(text: string): Parsed<Dominfo> {
  const fields = keyValueLines(text);
  const problems: string[] = [];
  const memory = /^(\d+)\s*(\S*)$/.exec(fields.get('Max memory') ?? '');
  const stateWord = fields.get('State');
  const state = stateWord !== undefined ? asDomainState(stateWord) : undefined;
  if (stateWord !== undefined && !state) problems.push(`dominfo: unknown state ${JSON.stringify(stateWord)}`);
  const yesNo = (key: string, yes: string, no: string): boolean | undefined => {
    const value = fields.get(key);
    if (value === yes) return true;
    if (value === no) return false;
    problems.push(`dominfo: ${key} is ${JSON.stringify(value ?? '')}, expected ${yes} or ${no}`);
    return undefined;
  };
  return {
    value: {
      name: fields.get('Name'),
      uuid: fields.get('UUID'),
      state,
      vcpus: integer(fields.get('CPU(s)')),
      maxMemoryBytes: memory ? memoryToBytes(memory[1]!, memory[2] || 'KiB') : undefined,
      persistent: yesNo('Persistent', 'yes', 'no'),
      autostart: yesNo('Autostart', 'enable', 'disable'),
    },
    problems,
  };
}

/** Parses `virsh domstate --reason <domain>`: `running (migrated)`, `shut off (crashed)`. */
export function parseDomstateReason(text: string): Parsed<{ state: DomainState; reason: string | undefined } | undefined> {
  const line = text.trim();
  const m = /^(.+?)(?:\s+\((.+)\))?$/.exec(line);
  const state = m ? asDomainState(m[1]!) : undefined;
  if (!state) return { value: undefined, problems: [`domstate: not understood: ${JSON.stringify(line)}`] };
  return { value: { state, reason: m![2] }, problems: [] };
}

export interface VirshListEntry {
  /** Running domains have an id; shut-off ones show `-`. */
  id: number | undefined;
  name: string;
  state: DomainState;
}

/**
 * Parses the `virsh list --all` table. The columns are aligned to the header, which is how a
 * name with spaces is told from the state that follows it.
 */
export function parseVirshListAll(text: string): Parsed<VirshListEntry[]> {
  const lines = text.split('\n');
  const header = lines.findIndex((l) => /^\s*Id\s+Name\s+State\s*$/.test(l));
  if (header < 0) return { value: [], problems: ['virsh list: no "Id Name State" header'] };
  const nameAt = lines[header]!.indexOf('Name');
  const stateAt = lines[header]!.indexOf('State');
  const entries: VirshListEntry[] = [];
  const problems: string[] = [];
  for (const line of lines.slice(header + 1)) {
    if (line.trim() === '' || /^-+$/.test(line.trim())) continue;
    const id = line.slice(0, nameAt).trim();
    const name = line.slice(nameAt, stateAt).trim();
    const stateWord = line.slice(stateAt).trim();
    const state = asDomainState(stateWord);
    if (!name || !state) {
      problems.push(`virsh list: row not understood: ${JSON.stringify(line)}`);
      continue;
    }
    entries.push({ id: /^\d+$/.test(id) ? Number(id) : undefined, name, state });
  }
  return { value: entries, problems };
}

/** Parses `virsh nodeinfo`. */
export function parseVirshNodeinfo(text: string): Parsed<VirshNodeInfo> {
  const fields = keyValueLines(text);
  const memory = /^(\d+)\s*(\S*)$/.exec(fields.get('Memory size') ?? '');
  return {
    value: {
      cpuModel: fields.get('CPU model'),
      cpus: integer(fields.get('CPU(s)')),
      cpuMhz: integer(fields.get('CPU frequency')),
      sockets: integer(fields.get('CPU socket(s)')),
      coresPerSocket: integer(fields.get('Core(s) per socket')),
      threadsPerCore: integer(fields.get('Thread(s) per core')),
      numaCells: integer(fields.get('NUMA cell(s)')),
      memoryBytes: memory ? memoryToBytes(memory[1]!, memory[2] || 'KiB') : undefined,
    },
    problems: fields.size === 0 ? ['virsh nodeinfo: empty'] : [],
  };
}

/** Parses `virsh version` (`Using library: libvirt 9.0.0`, `Running hypervisor: QEMU 7.2.22`). */
export function parseVirshVersion(text: string): Parsed<LibvirtVersion> {
  const fields = keyValueLines(text);
  const library = /^libvirt\s+(\S+)$/.exec(fields.get('Using library') ?? '')?.[1];
  const hypervisor = /^(.+?)\s+(\S+)$/.exec(fields.get('Running hypervisor') ?? '');
  return {
    value: {
      library,
      hypervisor: hypervisor ? { name: hypervisor[1]!, version: hypervisor[2]! } : undefined,
    },
    problems: library === undefined ? ['virsh version: no "Using library" line'] : [],
  };
}
