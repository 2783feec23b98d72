import type {
  DomainDisk, DomainInterface, DomainState, LibvirtVersion, Parsed, VirshNodeInfo,
} from '../types.js';

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
/**
 * Parses `virsh dumpxml [--inactive] <domain>`. A node lists twenty domains and pmc asks a
 * hundred nodes per command, so this reads the XML in one pass without building a document:
 * only `/domain/{name,uuid,memory,vcpu}` and the disks and interfaces under the first
 * `/domain/devices` are kept. The whole text is still checked for well-formedness as XML 1.0
 * defines it for what libvirt writes (elements, attributes in either quote, the predefined and
 * numeric character references, CDATA, comments, processing instructions, a DOCTYPE), so a cut
 * or garbled document is reported, not half read.
 */
export function parseDomainXml(xml: string): Parsed<DomainDefinition | undefined> {
  let found: DomainFields;
  try {
    found = scanDomainXml(xml);
  } catch (err) {
    if (err instanceof XmlSyntaxError) return { value: undefined, problems: [`domain XML: ${err.message}`] };
    throw err;
  }
  if (found.root !== 'domain') {
    return { value: undefined, problems: [`domain XML: root element is ${found.root}, not domain`] };
  }

  const name = found.name.trim();
  const uuid = found.uuid.trim();
  const memoryBytes = found.memory === undefined ? undefined : memoryToBytes(found.memory.trim(), found.memoryElement?.get('unit'));
  const vcpus = Number(found.vcpuElement?.get('current') || found.vcpu.trim());
  if (!name || !uuid || memoryBytes === undefined || !Number.isInteger(vcpus) || vcpus <= 0) {
    return {
      value: undefined,
      problems: [`domain XML: missing or invalid name/uuid/memory/vcpu (name ${JSON.stringify(name)})`],
    };
  }
  const disks = found.disks.map((disk): DomainDisk => ({
    device: disk.element.get('device') || 'disk',
    type: disk.element.get('type') || 'file',
    source: disk.source?.get('dev') || disk.source?.get('file') || disk.source?.get('name') || disk.source?.get('volume') || undefined,
    target: disk.target?.get('dev') ?? '',
    bus: disk.target?.get('bus') || undefined,
  }));
  const interfaces = found.interfaces.map((nic): DomainInterface => ({
    type: nic.element.get('type') ?? '',
    mac: nic.mac?.get('address') || undefined,
    bridge: nic.source?.get('bridge') || undefined,
    network: nic.source?.get('network') || undefined,
    model: nic.model?.get('type') || undefined,
  }));
  return { value: { name, uuid, memoryBytes, vcpus, disks, interfaces }, problems: [] };
}

export function memoryToBytes(value: string, unit: string | null | undefined): number | undefined {
  const factor = MEMORY_UNITS[(unit || 'KiB').toLowerCase()];
  if (factor === undefined || !DIGITS.test(value.trim())) return undefined;
  return Number(value.trim()) * factor;
}

const DIGITS = /^\d+$/;

// ---------------------------------------------------------------------------------------------
// The domain XML scanner

class XmlSyntaxError extends Error {}

type Attributes = Map<string, string>;

/** Only the first of each child counts, as libvirt reads it. */
interface DiskFields { element: Attributes; source?: Attributes; target?: Attributes }
interface InterfaceFields { element: Attributes; mac?: Attributes; source?: Attributes; model?: Attributes }

/** Text is the element's text content untrimmed; `memory` is undefined when there is no element. */
interface DomainFields {
  root: string | undefined;
  name: string;
  uuid: string;
  memory: string | undefined;
  memoryElement: Attributes | undefined;
  vcpu: string;
  vcpuElement: Attributes | undefined;
  disks: DiskFields[];
  interfaces: InterfaceFields[];
}

type TextField = 'name' | 'uuid' | 'memory' | 'vcpu';

const LT = 0x3c;
const GT = 0x3e;
const SLASH = 0x2f;
const BANG = 0x21;
const QUESTION = 0x3f;
const EQUALS = 0x3d;
const QUOTE = 0x22;
const APOSTROPHE = 0x27;

function isXmlSpace(code: number): boolean {
  return code === 0x20 || code === 0x0a || code === 0x09 || code === 0x0d;
}

/** The end of an element or attribute name: white space, `/`, `>` or `=`. */
function isNameEnd(code: number): boolean {
  return isXmlSpace(code) || code === SLASH || code === GT || code === EQUALS;
}

/** Line numbers are counted only for the one message that needs them. */
function syntaxError(xml: string, at: number, message: string): XmlSyntaxError {
  let line = 1;
  for (let i = xml.indexOf('\n'); i >= 0 && i < at; i = xml.indexOf('\n', i + 1)) line++;
  return new XmlSyntaxError(`${message} (line ${line})`);
}

function scanDomainXml(xml: string): DomainFields {
  const found: DomainFields = {
    root: undefined, name: '', uuid: '', memory: undefined, memoryElement: undefined, vcpu: '', vcpuElement: undefined,
    disks: [], interfaces: [],
  };
  const seen = new Set<TextField>();
  /** Names of the elements the scanner is inside, outermost first. */
  const open: string[] = [];
  let devicesSeen = false;
  let devicesOpen = false;
  let disk: DiskFields | undefined;
  let nic: InterfaceFields | undefined;
  let textField: TextField | undefined;
  let textParts: string[] = [];
  const length = xml.length;

  /** The attributes of an element pmc reads, or undefined to only step over them. */
  const wanted = (name: string): Attributes | undefined => {
    const depth = open.length;
    if (depth === 1) {
      if ((name === 'name' || name === 'uuid' || name === 'memory' || name === 'vcpu') && !seen.has(name)) {
        seen.add(name);
        textField = name;
        textParts = [];
        if (name === 'memory') return (found.memoryElement = new Map());
        if (name === 'vcpu') return (found.vcpuElement = new Map());
        return undefined;
      }
      if (name === 'devices' && !devicesSeen) {
        devicesSeen = true;
        devicesOpen = true;
      }
      return undefined;
    }
    if (depth === 2 && devicesOpen) {
      if (name === 'disk') {
        disk = { element: new Map() };
        found.disks.push(disk);
        return disk.element;
      }
      if (name === 'interface') {
        nic = { element: new Map() };
        found.interfaces.push(nic);
        return nic.element;
      }
      return undefined;
    }
    if (depth === 3 && disk && (name === 'source' || name === 'target') && !disk[name]) return (disk[name] = new Map());
    if (depth === 3 && nic && (name === 'mac' || name === 'source' || name === 'model') && !nic[name]) return (nic[name] = new Map());
    return undefined;
  };

  const closed = (): void => {
    const depth = open.length;
    if (depth === 1 && textField !== undefined) {
      const text = textParts.join('');
      if (textField === 'memory') found.memory = text;
      else found[textField] = text;
      textField = undefined;
    } else if (depth === 2) {
      disk = undefined;
      nic = undefined;
    } else if (depth === 1) {
      devicesOpen = false;
    }
  };

  let pos = 0;
  while (pos < length) {
    const lt = xml.indexOf('<', pos);
    const textEnd = lt < 0 ? length : lt;
    if (textEnd > pos) {
      if (textField !== undefined) {
        textParts.push(decodeText(xml, pos, textEnd));
      } else if (open.length === 0) {
        for (let i = pos; i < textEnd; i++) {
          if (!isXmlSpace(xml.charCodeAt(i))) throw syntaxError(xml, i, 'text outside the root element');
        }
      }
    }
    if (lt < 0) break;

    const next = xml.charCodeAt(lt + 1);
    if (next === BANG) {
      if (xml.startsWith('<!--', lt)) {
        const end = xml.indexOf('-->', lt + 4);
        if (end < 0) throw syntaxError(xml, lt, 'unterminated comment');
        pos = end + 3;
      } else if (xml.startsWith('<![CDATA[', lt)) {
        const end = xml.indexOf(']]>', lt + 9);
        if (end < 0) throw syntaxError(xml, lt, 'unterminated CDATA section');
        if (open.length === 0) throw syntaxError(xml, lt, 'CDATA outside the root element');
        if (textField !== undefined) textParts.push(normalizeNewlines(xml.slice(lt + 9, end)));
        pos = end + 3;
      } else if (xml.startsWith('<!DOCTYPE', lt) && found.root === undefined) {
        pos = skipDoctype(xml, lt);
      } else {
        throw syntaxError(xml, lt, 'unexpected "<!"');
      }
      continue;
    }
    if (next === QUESTION) {
      const end = xml.indexOf('?>', lt + 2);
      if (end < 0) throw syntaxError(xml, lt, 'unterminated processing instruction');
      pos = end + 2;
      continue;
    }
    if (next === SLASH) {
      const gt = xml.indexOf('>', lt + 2);
      if (gt < 0) throw syntaxError(xml, lt, 'unterminated end tag');
      const name = xml.slice(lt + 2, gt).trimEnd();
      const expected = open.pop();
      if (name !== expected) {
        throw syntaxError(xml, lt, expected === undefined ? `</${name}> closes nothing` : `</${name}> where </${expected}> was expected`);
      }
      closed();
      pos = gt + 1;
      continue;
    }

    // A start tag.
    let i = lt + 1;
    while (i < length && !isNameEnd(xml.charCodeAt(i))) i++;
    const name = xml.slice(lt + 1, i);
    if (name === '') throw syntaxError(xml, lt, 'a "<" that starts no tag');
    if (open.length === 0) {
      if (found.root !== undefined) throw syntaxError(xml, lt, `a second root element <${name}>`);
      found.root = name;
      // Not a domain: the caller says so; nothing in it is of use.
      if (name !== 'domain') return found;
    }
    const attributes = wanted(name);
    let selfClosing = false;
    for (;;) {
      while (i < length && isXmlSpace(xml.charCodeAt(i))) i++;
      if (i >= length) throw syntaxError(xml, lt, `unterminated tag <${name}`);
      const c = xml.charCodeAt(i);
      if (c === GT) {
        i++;
        break;
      }
      if (c === SLASH) {
        if (xml.charCodeAt(i + 1) !== GT) throw syntaxError(xml, i, `"/" not followed by ">" in <${name}>`);
        selfClosing = true;
        i += 2;
        break;
      }
      const attributeStart = i;
      while (i < length && !isNameEnd(xml.charCodeAt(i))) i++;
      const attribute = xml.slice(attributeStart, i);
      while (i < length && isXmlSpace(xml.charCodeAt(i))) i++;
      if (i >= length) throw syntaxError(xml, lt, `unterminated tag <${name}`);
      if (attribute === '' || xml.charCodeAt(i) !== EQUALS) throw syntaxError(xml, i, `attribute without a value in <${name}>`);
      i++;
      while (i < length && isXmlSpace(xml.charCodeAt(i))) i++;
      const quote = xml.charCodeAt(i);
      if (quote !== QUOTE && quote !== APOSTROPHE) throw syntaxError(xml, i, `unquoted value of ${attribute} in <${name}>`);
      const valueEnd = xml.indexOf(quote === QUOTE ? '"' : "'", i + 1);
      if (valueEnd < 0) throw syntaxError(xml, i, `unterminated value of ${attribute} in <${name}>`);
      if (attributes) {
        if (attributes.has(attribute)) throw syntaxError(xml, attributeStart, `attribute ${attribute} twice in <${name}>`);
        attributes.set(attribute, decodeAttribute(xml, i + 1, valueEnd));
      }
      i = valueEnd + 1;
    }
    if (!selfClosing) open.push(name);
    else closed();
    pos = i;
  }
  if (open.length > 0) throw syntaxError(xml, length, `<${open.at(-1)}> is not closed (the document ends early)`);
  if (found.root === undefined) throw syntaxError(xml, 0, 'no root element');
  return found;
}

/** XML reads every line end (CR LF, lone CR) as LF. */
function normalizeNewlines(text: string): string {
  return text.includes('\r') ? text.replace(LINE_ENDS, '\n') : text;
}

const LINE_ENDS = /\r\n?/g;
/** Attribute values read literal line ends and tabs as spaces (XML 1.0, 3.3.3). */
const ATTRIBUTE_WHITESPACE = /\r\n|[\r\n\t]/g;
const CHARACTER_REFERENCE = /^#(?:x([0-9a-fA-F]+)|([0-9]+))$/;
/** What may stand between `&` and `;` for it to be read as a reference at all. */
const REFERENCE = /^(?:#\w+|[A-Za-z_:][\w.:-]*)$/;

function decodeText(xml: string, from: number, to: number): string {
  return decodeReferences(xml, normalizeNewlines(xml.slice(from, to)), from);
}

function decodeAttribute(xml: string, from: number, to: number): string {
  const raw = xml.slice(from, to);
  if (raw.includes('<')) throw syntaxError(xml, from, `"<" in an attribute value`);
  return decodeReferences(xml, raw.replace(ATTRIBUTE_WHITESPACE, ' '), from);
}

/**
 * `&amp;` `&lt;` `&gt;` `&quot;` `&apos;` and `&#N;` `&#xH;`; libvirt declares no other entities.
 * A `&` that starts no reference at all (`a & b`) is kept as it is, as main's DOM parser
 * (xmldom) did: libvirt never writes one, and refusing it would hide the domain.
 */
function decodeReferences(xml: string, text: string, at: number): string {
  let ampersand = text.indexOf('&');
  if (ampersand < 0) return text;
  let decoded = '';
  let from = 0;
  while (ampersand >= 0) {
    const semicolon = text.indexOf(';', ampersand + 1);
    const reference = semicolon < 0 ? '' : text.slice(ampersand + 1, semicolon);
    if (REFERENCE.test(reference)) {
      const character = referencedCharacter(reference);
      if (character === undefined) throw syntaxError(xml, at, `unknown entity &${reference.slice(0, 20)};`);
      decoded += text.slice(from, ampersand) + character;
      from = semicolon + 1;
    }
    ampersand = text.indexOf('&', ampersand + 1);
  }
  return decoded + text.slice(from);
}

function referencedCharacter(reference: string): string | undefined {
  switch (reference) {
    case 'amp': return '&';
    case 'lt': return '<';
    case 'gt': return '>';
    case 'quot': return '"';
    case 'apos': return "'";
  }
  const m = CHARACTER_REFERENCE.exec(reference);
  if (!m) return undefined;
  const code = m[1] !== undefined ? parseInt(m[1], 16) : Number(m[2]);
  const allowed = code === 0x9 || code === 0xa || code === 0xd || (code >= 0x20 && code <= 0xd7ff)
    || (code >= 0xe000 && code <= 0xfffd) || (code >= 0x10000 && code <= 0x10ffff);
  return allowed ? String.fromCodePoint(code) : undefined;
}

/** `<!DOCTYPE domain>` or with an internal subset `[ ... ]`, whose quoted strings may hold `]` and `>`. */
function skipDoctype(xml: string, lt: number): number {
  let depth = 0;
  for (let i = lt + 9; i < xml.length; i++) {
    const c = xml.charCodeAt(i);
    if (c === QUOTE || c === APOSTROPHE) {
      const end = xml.indexOf(c === QUOTE ? '"' : "'", i + 1);
      if (end < 0) break;
      i = end;
    } else if (c === 0x5b) {
      depth++;
    } else if (c === 0x5d) {
      depth--;
    } else if (c === GT && depth <= 0) {
      return i + 1;
    } else if (c === LT && xml.startsWith('<!--', i)) {
      const end = xml.indexOf('-->', i + 4);
      if (end < 0) break;
      i = end + 2;
    }
  }
  throw syntaxError(xml, lt, 'unterminated DOCTYPE');
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
