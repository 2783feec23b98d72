/**
 * The domain XML scanner, the DRBD configuration tokenizer and the section splitter were
 * rewritten to be cheap; they must read exactly what main's parsers read (kept verbatim in
 * ./reference as the oracle) on every real fixture, on a lab node's 20 domains, on the XML
 * forms libvirt may write, and on probe output cut anywhere or holding escaped lines.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { parseDrbdConfig, parseDrbdsetupShow } from '../../../src/probe/parsers/drbd-config.js';
import { parseDomainXml } from '../../../src/probe/parsers/virsh.js';
import { splitSections } from '../../../src/probe/sections.js';
import * as mainDrbd from './reference/drbd-config.main.js';
import * as mainSections from './reference/sections.main.js';
import * as mainVirsh from './reference/virsh.main.js';
import { fixture, fixturePath, frame, real } from './helpers.js';

const LAB = 'real/lab-20-domains/';

function sameDomain(xml: string, label: string): void {
  const now = parseDomainXml(xml);
  const before = mainVirsh.parseDomainXml(xml);
  assert.deepEqual(now.value, before.value, label);
  // Messages of broken documents differ in wording (xmldom's versus the scanner's); whether
  // there is a problem does not.
  if (before.value === undefined) assert.equal(now.problems.length > 0, before.problems.length > 0, label);
  else assert.deepEqual(now.problems, before.problems, label);
}

function sameDrbd(text: string, label: string): void {
  assert.deepEqual(parseDrbdConfig(text, label), mainDrbd.parseDrbdConfig(text, label), label);
  assert.deepEqual(parseDrbdsetupShow(text), mainDrbd.parseDrbdsetupShow(text), label);
}

/** dumpxml.txt holds each domain's XML after a `=== name` line. */
function labDomainXml(): Map<string, string> {
  const documents = new Map<string, string>();
  for (const part of fixture(`${LAB}dumpxml.txt`).split(/^=== /m).slice(1)) {
    const newline = part.indexOf('\n');
    documents.set(part.slice(0, newline), part.slice(newline + 1));
  }
  return documents;
}

test('every real domain XML fixture reads the same as with main', () => {
  for (const name of readdirSync(fixturePath('real')).filter((f) => f.startsWith('virsh-dumpxml'))) sameDomain(real(name), name);
});

test('the lab node\'s 20 domains: dumpxml and the probe\'s domain sections read the same as with main', () => {
  const documents = labDomainXml();
  assert.equal(documents.size, 20);
  for (const [name, xml] of documents) {
    sameDomain(xml, name);
    assert.equal(parseDomainXml(xml).value?.name, name);
  }
  const { sections } = splitSections(fixture(`${LAB}probe.pm-1.txt`));
  const domainSections = [...sections.values()].filter((s) => s.name.startsWith('domain-xml:'));
  assert.equal(domainSections.length, 20);
  for (const section of domainSections) sameDomain(section.stdout, section.name);
  const dump = sections.get('drbdadm-dump');
  const show = sections.get('drbdsetup-show');
  assert.ok(dump && show);
  sameDrbd(dump.stdout, 'lab drbdadm dump');
  sameDrbd(show.stdout, 'lab drbdsetup show');
});

test('every DRBD configuration fixture reads the same as with main', () => {
  const files = ['real/drbdadm-dump.txt', 'real/drbdsetup-show.84.txt', 'drbd9/dump.txt', 'drbd9/show.txt',
    ...readdirSync(fixturePath('prior-system')).filter((f) => f.endsWith('.res')).map((f) => `prior-system/${f}`)];
  for (const file of files) sameDrbd(fixture(file), file);
});

test('DRBD configuration edge cases read the same as with main', () => {
  const texts = [
    'resource "a b" { on "pm 1" { address 10.0.0.1:7788; device /dev/drbd1; disk "/dev/vg/a\\"b"; } }',
    'resource r {\r\n\ton pm-1 {\taddress\t10.0.0.1:7788;\r\n device minor 3; } # comment { ; }\n}',
    'resource r { on pm-1 { address [fd00::1]:7788; } net { allow-two-primaries; } }',
    'resource r { on pm-1 { address ipv4 10.0.0.1:7788 } ',
    'resource "unterminated { on x { } }',
    'resource r { "multi\nline\\\nstring"; on pm-1 { } } }',
    'common { net { allow-two-primaries yes; } }\nresource r { on a { } on b { } }',
    'resource r\u00a0{ on a {} }',
    '',
  ];
  for (const text of texts) sameDrbd(text, JSON.stringify(text));
});

test('domain XML in every form libvirt or a hand-edited file may take reads the same as with main', () => {
  const base = real('virsh-dumpxml.inactive.xml');
  const variants = [
    base.replace('<name>test-vm</name>', '<name>a&amp;b&lt;&gt;&quot;&apos;&#233;&#x263A;</name>'),
    base.replace('<name>test-vm</name>', '<name>a & b &amp;c; &;</name>'),
    base.replace('<name>test-vm</name>', '<name><![CDATA[cdata <vm> & co]]></name>'),
    base.replace('<name>test-vm</name>', '<name>te<!-- a comment -->st</name>'),
    base.replace("<source dev='/dev/drbd10'/>", '<source dev="/dev/drbd&#49;0"/>'),
    base.replace("<source bridge='br0'/>", `<source bridge = "br'0" />`),
    base.replace("<mac address='52:54:00:ff:00:0a'/>", "<mac address='52:54:00:ff:00:0a'></mac>"),
    base.replace("<memory unit='KiB'>65536</memory>", "<memory unit='MiB'>\n  64\n</memory>"),
    base.replace("<memory unit='KiB'>65536</memory>", '<memory>65536</memory>'),
    base.replace("<vcpu placement='static'>1</vcpu>", "<vcpu placement='static' current='2'>4</vcpu>"),
    base.replace('<domain type=\'qemu\'>', "<?xml version='1.0' encoding='UTF-8'?>\n<!DOCTYPE domain>\n<!-- head -->\n<domain type='qemu'>"),
    base.replace('<devices>', "<metadata><x:vm xmlns:x='urn:x'><name>not me</name><devices><disk type='file'/></devices></x:vm></metadata>\n<devices>"),
    base.replace('</devices>', "</devices><devices><disk type='file' device='disk'><source file='/second'/></disk></devices>"),
    base.replace("<target dev='vda' bus='virtio'/>", "<target dev='vda' bus='virtio'/><target dev='vdz'/><source dev='/other'/>"),
    base.replaceAll('\n', '\r\n'),
    base.replace("<source dev='/dev/drbd10'/>", "<source dev='/dev/\tdrbd10\n'/>"),
    '<domain><name>x</name><uuid>u</uuid><memory>1</memory><vcpu>1</vcpu><devices><interface/></devices></domain>',
  ];
  const broken = [
    base.slice(0, base.length / 2),
    base.replace('</devices>', ''),
    base.replace('<name>test-vm</name>', '<name>&nbsp;x</name>'),
    base.replace("<source dev='/dev/drbd10'/>", '<source dev=/dev/drbd10/>'),
    base.replace('<name>test-vm</name>', '<name>x</nam>'),
    `${base}<domain/>`,
    'error: failed to get domain \'x\'',
    '',
    '<!-- only a comment -->',
  ];
  for (const xml of [...variants, ...broken]) sameDomain(xml, xml.slice(0, 200));
  for (const xml of variants) assert.notEqual(parseDomainXml(xml).value, undefined, xml.slice(0, 200));
  for (const xml of broken) assert.equal(parseDomainXml(xml).value, undefined, xml.slice(0, 200));
});

function sameSections(output: string, label: string): void {
  assert.deepEqual(splitSections(output), mainSections.splitSections(output), label);
}

test('real probe output splits into the same sections as with main, whole and cut anywhere', () => {
  for (const file of ['real/probe.new.pm-1.txt', 'real/probe.old.pm-1.txt', `${LAB}probe.pm-1.txt`]) {
    const output = fixture(file);
    sameSections(output, file);
    // A cut on each side of every line break (a marker line cut short, or whole), and anywhere in between.
    const cuts = new Set<number>();
    for (let at = output.indexOf('\n'); at !== -1 && cuts.size < 2000; at = output.indexOf('\n', at + 1)) cuts.add(at).add(at + 1);
    for (let at = 0; at < output.length; at += 997) cuts.add(at);
    for (const at of cuts) sameSections(output.slice(0, at), `${file} cut at ${at}`);
  }
});

test('escaped lines, stray text and unexpected markers split the same as with main', () => {
  const escaped = '@first\nplain\n@@PMC@@ end x 0\n\n@last';
  const outputs = [
    frame('a', escaped) + frame('b', 'ok\n', 3, escaped),
    frame('a', `${escaped}\n`, 1, `${escaped}\n`),
    frame('a', 'one\n', 0, 'e1\n') + frame('a', 'again\n'),
    `stray\n${frame('a', 'x\n')}  \n\nmore stray\n${frame('b', '')}`,
    '@@PMC@@ begin a\nbefore\n@@PMC@@ bogus\nafter\n@@PMC@@ end a 0\n',
    '@@PMC@@ begin a\n@@PMC@@ bogus\nafter\n@@PMC@@ stderr a\n@@PMC@@ end b 1\nerr\n@@PMC@@ end a 2\n',
    '@@PMC@@ begin a\nout\n@@PMC@@ stderr a\nfirst\n@@PMC@@ stderr a\nsecond\n@@PMC@@ end a 0\n',
    '@@PMC@@ begin a\n@unescaped\n@-\n@-@-twice\r\nwindows\r\n@@PMC@@ end a 0',
    '@@PMC@@ begin a\n@@PMC@@ begin b\nb\n@@PMC@@ end a 0\n@@PMC@@ end b x\n',
    '@@PMC@@ begin a\n@@PMC@@ end a 0\n@@PMC@@ begin \n\n@@PMC@@ end  0\n',
    '@@PMC@@ begin a',
    '@@PMC@@ begin a\n',
    '@-stray escaped\n@\n',
    '\n',
    '',
  ];
  for (const output of outputs) sameSections(output, JSON.stringify(output));
});
