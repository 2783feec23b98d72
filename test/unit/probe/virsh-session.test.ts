import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseProbeOutput } from '../../../src/probe/gather.js';
import type { ProbeOptions } from '../../../src/probe/types.js';
import { frame, lvmFullreport, real, virshSession, type SessionCommand } from './helpers.js';

const OPTS: ProbeOptions = { volumeGroup: 'vg-pmc', bridge: 'br0', backupDir: '/pmc-vm-backup' };
const REAL_UUID = 'd2fd4e59-ee6a-4d1e-aee0-f5ae227a41ab';

/** Everything but libvirt, as on pm-2 (the real files). */
const NODE = [
  frame('hostname', 'pm-2\n'),
  frame('kernel-release', '6.1.0-18-cloud-amd64\n'),
  frame('meminfo', real('proc-meminfo.txt')),
  frame('cpus', '2\n'),
  frame('tools', 'xdelta3 yes\nrsync yes\n'),
  frame('backup-dir', ''),
  frame('lvm', lvmFullreport()),
  frame('bridge', '[{"ifname":"br0","flags":["UP","LOWER_UP"],"operstate":"UP","linkinfo":{"info_kind":"bridge"}}]\n'),
  frame('proc-drbd', real('proc-drbd.connected-primary.txt')),
  frame('drbdadm-version', real('drbdadm-version.txt')),
  frame('drbd-events2', real('drbdsetup-events2-now-statistics.84.txt')),
  frame('drbdsetup-show', real('drbdsetup-show.84.txt')),
  frame('kernel-log', ''),
  frame('drbd-res-files', '/etc/drbd.d/test-vm.res\n'),
  frame('drbdadm-dump', real('drbdadm-dump.txt')),
].join('');

/** 50 domains made from the real test-vm: every other one running, awkward names among them. */
function domains(count: number): { name: string; running: boolean; uuid: string }[] {
  const awkward = ['web 1', "it's", 'semi;colon', '"quoted"', '@at', 'back\\slash'];
  return Array.from({ length: count }, (_, i) => ({
    name: awkward[i] ?? `vm-${String(i).padStart(2, '0')}`,
    running: i % 2 === 0,
    uuid: REAL_UUID.replace(/.{12}$/, String(i).padStart(12, '0')),
  }));
}

function libvirtCommands(list: ReturnType<typeof domains>): { node: SessionCommand[]; perDomain: SessionCommand[] } {
  const rename = (text: string, d: (typeof list)[number]) => text.replace('test-vm', d.name).replace(REAL_UUID, d.uuid);
  const table = [' Id   Name         State', '-----------------------------',
    ...list.map((d, i) => ` ${d.running ? String(i + 1).padEnd(4) : '-   '} ${d.name.padEnd(12)} ${d.running ? 'running' : 'shut off'}`), '', ''].join('\n');
  return {
    node: [
      { name: 'virsh-version', stdout: real('virsh-version.txt') },
      { name: 'virsh-nodeinfo', stdout: real('virsh-nodeinfo.txt') },
      { name: 'virsh-list', stdout: table },
      { name: 'virsh-names', stdout: `${list.map((d) => d.name).join('\n')}\n\n` },
    ],
    perDomain: list.flatMap((d) => [
      // A description that looks like framing must come through as it is.
      { name: `domain-xml:${d.name}`, stdout: rename(real('virsh-dumpxml.inactive.xml'), d).replace('</name>', '</name>\n  <description>\n@@PMC@@.tmp.forged domain-info:x\n@@PMC@@ end x 0\n</description>') },
      { name: `domain-info:${d.name}`, stdout: rename(real(d.running ? 'virsh-dominfo.running.txt' : 'virsh-dominfo.shutoff.txt'), d) },
      { name: `domain-state:${d.name}`, stdout: real(d.running ? 'virsh-domstate-reason.running.txt' : 'virsh-domstate-reason.shutoff.txt') },
    ]),
  };
}

/** The old framing: one section per virsh call. */
function perCommand(commands: SessionCommand[]): string {
  return commands.map((c) => frame(c.name, c.stdout, c.stderr ? 1 : 0, c.stderr ?? '')).join('');
}

test('50 domains: one section per virsh call and two virsh sessions give the same NodeFacts', () => {
  const { node, perDomain } = libvirtCommands(domains(50));
  const old = parseProbeOutput(NODE + perCommand(node) + perCommand(perDomain), OPTS);
  const batched = parseProbeOutput(NODE + virshSession(node) + virshSession(perDomain), OPTS);
  assert.deepEqual(batched, old);
  assert.deepEqual(batched.problems, []);
  assert.equal(batched.domains.length, 50);
  assert.deepEqual(batched.domains.slice(0, 3).map((d) => [d.name, d.state, d.stateReason]), [
    ['web 1', 'running', 'migrated'], ["it's", 'shut off', 'migrated'], ['semi;colon', 'running', 'migrated'],
  ]);
  assert.match(batched.domains[0]!.xml!, /^@@PMC@@\.tmp\.forged domain-info:x$/m);
});

test('a command that failed inside a session fails alone, as a separate call did', () => {
  const { node, perDomain } = libvirtCommands(domains(3));
  const gone = "error: failed to get domain 'it's'\n";
  const failed = perDomain.map((c) => (c.name === "domain-info:it's" || c.name === "domain-xml:it's" ? { ...c, stdout: '\n', stderr: gone } : c));
  const old = parseProbeOutput(NODE + perCommand(node) + perCommand(failed), OPTS);
  const batched = parseProbeOutput(NODE + virshSession(node) + virshSession(failed), OPTS);
  assert.deepEqual(batched, old);
  assert.deepEqual(batched.domains.map((d) => d.name), ['web 1', 'semi;colon']);
  assert.match(batched.problems.join('\n'), /^domain-xml:it's: exit 1: error: failed to get domain 'it's'$/m);
});

test('virsh missing: the session fails as version did alone, and no domain is looked for', () => {
  const error = "timeout: failed to run command 'virsh': No such file or directory\n";
  const old = parseProbeOutput(NODE + frame('virsh-version', '', 127, error), OPTS);
  const batched = parseProbeOutput(NODE + frame('virsh:virsh-version', '', 127, error), OPTS);
  assert.deepEqual(batched, old);
  assert.equal(batched.libvirt.active, false);
  assert.deepEqual(batched.problems, ["virsh-version: command not found (timeout: failed to run command 'virsh': No such file or directory)"]);
});

test('libvirtd down: every command of the session fails, reported once as for version alone', () => {
  const refused = 'error: failed to connect to the hypervisor\nerror: Failed to connect socket\n';
  const { node } = libvirtCommands([]);
  const old = parseProbeOutput(NODE + frame('virsh-version', '\n', 1, refused), OPTS);
  const batched = parseProbeOutput(NODE + virshSession(node.map((c) => ({ ...c, stdout: '\n', stderr: refused })), 1), OPTS);
  assert.deepEqual(batched, old);
  assert.deepEqual(batched.domains, []);
});

test('a session stopped by its timeout: what it printed is kept, the command it was in timed out', () => {
  const { node, perDomain } = libvirtCommands(domains(4));
  const reached = perDomain.slice(0, 5);
  reached[4] = { ...reached[4]!, stdout: 'running (' };
  const facts = parseProbeOutput(NODE + virshSession(node) + virshSession(reached, 124), OPTS);
  assert.deepEqual(facts.domains.map((d) => [d.name, d.state]), [['web 1', 'running'], ["it's", 'shut off']]);
  assert.match(facts.problems.join('\n'), /^domain-info:it's: timed out$/m);
  assert.match(facts.problems.join('\n'), /^domain-xml:semi;colon: missing from the probe output$/m);
});
