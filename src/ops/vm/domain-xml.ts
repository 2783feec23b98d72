/**
 * The libvirt domain of a VM pmc creates, built as an XML document (never pasted together from
 * strings, so no value can break out of its attribute), and the parts of `virsh capabilities`
 * it depends on.
 */
import { DOMImplementation, DOMParser, XMLSerializer, type Document, type Element } from '@xmldom/xmldom';
import { PmcError } from '../../util/errors.js';

export interface DomainSpec {
  name: string;
  /** Chosen by pmc, so every later step can name the domain by it and both nodes share it. */
  uuid: string;
  type: 'kvm' | 'qemu';
  /** The nodes' architecture (`x86_64`). */
  arch: string;
  memoryBytes: number;
  vcpus: number;
  /**
   * The disk: a block device (`/dev/drbdN`, or the LV of a one-node VM), or a raw file on the
   * shared file system (a `vm add --shared` VM).
   */
  disk: { type: 'block'; dev: string } | { type: 'file'; file: string };
  /** ISO image on the node, attached as a CD-ROM (booted from while the disk is blank). */
  cdrom: string | undefined;
  bridge: string;
  mac: string;
  /** The `<cpu>` element `virsh cpu-baseline --migratable` printed for the VM's nodes. */
  cpu: string;
  /** The address given with -a, kept in pmc's metadata of the domain. */
  ip: string | undefined;
}

/** Namespace of pmc's own element under `<metadata>`. */
export const PMC_METADATA_NS = 'https://pmc.invalid/xmlns/vm/1';

const X86 = new Set(['x86_64', 'i686']);

export function domainXml(spec: DomainSpec): string {
  const doc = new DOMImplementation().createDocument(null, 'domain', null);
  const domain = doc.documentElement!;
  domain.setAttribute('type', spec.type);
  const el = elementMaker(doc);
  const x86 = X86.has(spec.arch);

  const os = el('os', {}, el('type', { arch: spec.arch, ...(x86 ? { machine: 'pc' } : {}) }, 'hvm'), el('boot', { dev: 'hd' }));
  if (spec.cdrom) os.appendChild(el('boot', { dev: 'cdrom' }));

  const devices = el('devices', {},
    // cache='none' on a file too: libvirt refuses to live-migrate a shared disk that the host caches.
    el('disk', { type: spec.disk.type, device: 'disk' },
      el('driver', { name: 'qemu', type: 'raw', cache: 'none', io: 'native' }),
      el('source', spec.disk.type === 'block' ? { dev: spec.disk.dev } : { file: spec.disk.file }),
      el('target', { dev: 'vda', bus: 'virtio' })));
  if (spec.cdrom) {
    devices.appendChild(el('disk', { type: 'file', device: 'cdrom' },
      el('driver', { name: 'qemu', type: 'raw' }),
      el('source', { file: spec.cdrom }),
      el('target', x86 ? { dev: 'hdc', bus: 'ide' } : { dev: 'sda', bus: 'scsi' }),
      el('readonly', {})));
  }
  devices.appendChild(el('interface', { type: 'bridge' },
    el('mac', { address: spec.mac }),
    el('source', { bridge: spec.bridge }),
    el('model', { type: 'virtio' })));
  devices.appendChild(el('serial', { type: 'pty' }, el('target', { port: '0' })));
  devices.appendChild(el('console', { type: 'pty' }, el('target', { type: 'serial', port: '0' })));
  // VNC only on the node's loopback: reach it through an SSH tunnel, never from the network.
  devices.appendChild(el('graphics', { type: 'vnc', port: '-1', autoport: 'yes', listen: '127.0.0.1' },
    el('listen', { type: 'address', address: '127.0.0.1' })));

  const parts: Element[] = [
    el('name', {}, spec.name),
    el('uuid', {}, spec.uuid),
  ];
  if (spec.ip) {
    const vm = doc.createElementNS(PMC_METADATA_NS, 'pmc:vm');
    vm.appendChild(withText(doc.createElementNS(PMC_METADATA_NS, 'pmc:ip'), spec.ip));
    parts.push(el('metadata', {}, vm));
  }
  const kib = String(Math.ceil(spec.memoryBytes / 1024));
  parts.push(
    el('memory', { unit: 'KiB' }, kib),
    el('currentMemory', { unit: 'KiB' }, kib),
    el('vcpu', { placement: 'static' }, String(spec.vcpus)),
    os,
  );
  if (x86) parts.push(el('features', {}, el('acpi', {}), el('apic', {})));
  parts.push(
    doc.importNode(parseCpu(spec.cpu), true) as Element,
    el('clock', { offset: 'utc' }),
    el('on_poweroff', {}, 'destroy'),
    el('on_reboot', {}, 'restart'),
    el('on_crash', {}, 'destroy'),
    devices,
  );
  for (const part of parts) domain.appendChild(part);
  indent(domain, 1);
  return `${new XMLSerializer().serializeToString(doc)}\n`;
}

type Attributes = Record<string, string>;

function elementMaker(doc: Document) {
  return (tag: string, attributes: Attributes, ...content: Array<Element | string>): Element => {
    const element = doc.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
    for (const item of content) {
      if (typeof item === 'string') withText(element, item);
      else element.appendChild(item);
    }
    return element;
  };
}

function withText(element: Element, text: string): Element {
  element.appendChild(element.ownerDocument!.createTextNode(text));
  return element;
}

/** Line breaks and two-space indentation between elements, so the dry run reads like a file. */
function indent(element: Element, depth: number): void {
  const kids = Array.from(element.childNodes).filter((n) => n.nodeType === n.ELEMENT_NODE) as Element[];
  if (kids.length === 0) return;
  const doc = element.ownerDocument!;
  for (const kid of kids) {
    element.insertBefore(doc.createTextNode(`\n${'  '.repeat(depth)}`), kid);
    indent(kid, depth + 1);
  }
  element.appendChild(doc.createTextNode(`\n${'  '.repeat(depth - 1)}`));
}

/** Removes the whitespace between elements a parsed fragment brings, before it is re-indented. */
function stripWhitespace(element: Element): Element {
  for (const node of Array.from(element.childNodes)) {
    if (node.nodeType === node.TEXT_NODE && !node.nodeValue?.trim()) element.removeChild(node);
    else if (node.nodeType === node.ELEMENT_NODE) stripWhitespace(node as Element);
  }
  return element;
}

function parseXml(xml: string, what: string): Element {
  let first: string | undefined;
  try {
    const parser = new DOMParser({
      onError: (level, message) => {
        if (level === 'warning') return;
        first ??= message;
        throw new Error(message);
      },
    });
    const root = parser.parseFromString(xml, 'text/xml').documentElement;
    if (!root) throw new Error('no root element');
    return root;
  } catch (err) {
    throw new PmcError('PMC_E_REMOTE', `${what} is not valid XML: ${first ?? (err as Error).message}`,
      'run the same virsh command on the node by hand to see what it prints');
  }
}

function parseCpu(xml: string): Element {
  const cpu = parseXml(xml, 'the output of virsh cpu-baseline');
  if (cpu.nodeName !== 'cpu') {
    throw new PmcError('PMC_E_REMOTE', `virsh cpu-baseline printed <${cpu.nodeName}>, not <cpu>`,
      'run virsh cpu-baseline --migratable on the node by hand to see what it prints');
  }
  return stripWhitespace(cpu);
}

/** What `virsh capabilities` says about the node: its architecture and the domain types it runs. */
export interface NodeCapabilities {
  arch: string;
  /** Domain types offered for hardware-virtualized guests of the host's architecture (`qemu`, `kvm`). */
  domainTypes: string[];
}

export function parseCapabilities(xml: string, node: string): NodeCapabilities {
  const root = parseXml(xml, `${node}: virsh capabilities`);
  const host = Array.from(root.getElementsByTagName('host'))[0];
  const arch = host && Array.from(host.getElementsByTagName('arch'))[0]?.textContent?.trim();
  if (root.nodeName !== 'capabilities' || !arch) {
    throw new PmcError('PMC_E_REMOTE', `${node}: virsh capabilities names no host architecture`,
      `run virsh capabilities on ${node} by hand to see what it prints`);
  }
  const domainTypes = new Set<string>();
  for (const guest of Array.from(root.getElementsByTagName('guest'))) {
    if (guest.getElementsByTagName('os_type')[0]?.textContent?.trim() !== 'hvm') continue;
    for (const guestArch of Array.from(guest.getElementsByTagName('arch'))) {
      if (guestArch.getAttribute('name') !== arch) continue;
      for (const d of Array.from(guestArch.getElementsByTagName('domain'))) domainTypes.add(d.getAttribute('type') ?? '');
    }
  }
  return { arch, domainTypes: [...domainTypes].filter(Boolean) };
}

/**
 * The guest CPU a domain definition asks for, as one comparable phrase (`custom qemu64`,
 * `host-model`, `host-passthrough`): a live migration needs the same on both nodes. Undefined
 * when the XML cannot be read; `default` when it has no `<cpu>` (libvirt's own choice).
 */
export function cpuModelOf(xml: string | undefined): string | undefined {
  if (xml === undefined) return undefined;
  let root: Element;
  try {
    root = parseXml(xml, 'domain XML');
  } catch {
    return undefined;
  }
  const cpu = Array.from(root.childNodes).find((n): n is Element => n.nodeType === n.ELEMENT_NODE && n.nodeName === 'cpu');
  if (!cpu) return 'default';
  const mode = cpu.getAttribute('mode') || 'custom';
  const model = cpu.getElementsByTagName('model')[0]?.textContent?.trim();
  return model ? `${mode} ${model}` : mode;
}
