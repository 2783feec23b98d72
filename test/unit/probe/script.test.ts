import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseProbeOutput } from '../../../src/probe/gather.js';
import { buildProbeScript } from '../../../src/probe/script.js';
import { splitSections } from '../../../src/probe/sections.js';
import { expandVirshSessions } from '../../../src/probe/virsh-session.js';
import type { ProbeOptions } from '../../../src/probe/types.js';
import { fixturePath, lvmFullreport, real } from './helpers.js';
import { tempDirFor } from '../../temp-dir.js';

/** dash where installed (it is /bin/sh on Debian nodes), else whatever sh is. */
const SH = existsSync('/usr/bin/dash') ? '/usr/bin/dash' : 'sh';

/** A probe that hangs is killed (and the test fails) long after the second or two it takes on a loaded machine. */
function run(script: string, env: NodeJS.ProcessEnv = process.env): string {
  return execFileSync(SH, ['-c', script], { encoding: 'utf8', env, timeout: 120_000 });
}

/** PATH with stand-ins first: `tools` maps a name to the body of its sh script, written into `dir`. */
function standInPath(dir: string, tools: Record<string, string>): string {
  for (const [name, body] of Object.entries(tools)) writeFileSync(path.join(dir, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return `${dir}:${process.env['PATH']}`;
}

const OPTS: ProbeOptions = { volumeGroup: 'vg-pmc-test-absent', bridge: 'pmc-no-br0', backupDir: os.tmpdir() };

test('the script is valid POSIX sh (dash -n)', () => {
  execFileSync(SH, ['-n', '-c', buildProbeScript(OPTS)]);
});

test('run on this machine without the node tools: each missing tool is a failed section, the facts that exist are read', (t) => {
  // Whatever this machine has installed, these answer as sh does for a command it cannot find.
  const missing = 'echo "$0: not found" >&2; exit 127';
  const PATH = standInPath(tempDirFor(t, 'probe-missing'), { virsh: missing, drbdadm: missing, drbdsetup: missing, lvm: missing });
  const stdout = run(buildProbeScript(OPTS), { ...process.env, PATH });
  const sections = expandVirshSessions(splitSections(stdout).sections);
  assert.deepEqual(['lvm', 'virsh-version', 'drbdadm-version', 'drbdadm-dump'].map((name) => [name, sections.get(name)?.exitCode]),
    [['lvm', 127], ['virsh-version', 127], ['drbdadm-version', 127], ['drbdadm-dump', 127]]);

  const facts = parseProbeOutput(stdout, OPTS);
  assert.equal(facts.hostname, os.hostname());
  assert.equal(facts.cpus, os.cpus().length);
  assert.equal(facts.memory?.totalBytes, os.totalmem());
  assert.equal(facts.kernelRelease, os.release());
  assert.equal(facts.vg, undefined);
  assert.deepEqual(facts.lvs, []);
  assert.equal(facts.bridge.present, false);
  assert.equal(facts.backupDirExists, true);
  assert.match(facts.problems.join('\n'), /^lvm: /m);
  assert.doesNotMatch(facts.problems.join('\n'), /^bridge: /m, 'a missing bridge is a fact, not a problem');
  assert.equal(facts.drbd.moduleLoaded, existsSync('/proc/drbd'), 'the module counts as loaded exactly when /proc/drbd is there');
  assert.equal(facts.drbd.utilsVersion, undefined);
  assert.equal(facts.libvirt.active, false);
  assert.deepEqual(facts.domains, []);
});

test('parameters are quoted: a hostile backup dir or VG name runs nothing', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pmc-probe-'));
  const marker = path.join(dir, 'pwned');
  try {
    const hostile = { volumeGroup: `vg$(touch ${marker})`, bridge: `br0;touch ${marker}`, backupDir: `/x'; touch ${marker}; '`, sharedDir: `/y'"; touch ${marker}; $(touch ${marker})` };
    const facts = parseProbeOutput(run(buildProbeScript(hostile)), hostile);
    assert.equal(existsSync(marker), false);
    assert.equal(facts.backupDirExists, false);
    assert.equal(facts.shared?.present, false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * The real script against stand-in tools that print the real cluster's output (pm-2 after the
 * migration): exercises the virsh sessions (stand-in-virsh.mjs splits commands as virsh does),
 * a domain name with a space and one with a quote, stderr beside a successful command, and
 * domain XML that contains marker-like lines.
 */
test('end to end with stand-in virsh, drbdadm, lvm and ip printing the real output', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pmc-probe-tools-'));
  try {
    const realDir = fixturePath('real');
    const web1Xml = real('virsh-dumpxml.inactive.xml')
      .replace('<name>test-vm</name>', "<name>web 1'</name>\n  <description>\n@@PMC@@ end domain-xml:web 1' 0\n@-x\n</description>")
      .replace('d2fd4e59-ee6a-4d1e-aee0-f5ae227a41ab', '11111111-2222-3333-4444-555555555555');
    const virshDir = path.join(dir, 'virsh-data');
    const domain = (name: string, files: Record<string, string>) => {
      mkdirSync(path.join(virshDir, 'domains', name), { recursive: true });
      for (const [file, text] of Object.entries(files)) writeFileSync(path.join(virshDir, 'domains', name, file), text);
    };
    domain('test-vm', {
      xml: real('virsh-dumpxml.inactive.xml'), dominfo: real('virsh-dominfo.running.txt'), domstate: real('virsh-domstate-reason.running.txt'),
    });
    domain("web 1'", { xml: web1Xml, dominfo: real('virsh-dominfo.shutoff.txt'), domstate: 'shut off (destroyed)\n\n' });
    writeFileSync(path.join(virshDir, 'version'), real('virsh-version.txt'));
    writeFileSync(path.join(virshDir, 'nodeinfo'), real('virsh-nodeinfo.txt'));
    writeFileSync(path.join(virshDir, 'list'), " Id   Name      State\n--------------------------\n 1    test-vm   running\n -    web 1'    shut off\n\n");
    writeFileSync(path.join(dir, 'lvm-report.json'), lvmFullreport());
    const PATH = standInPath(dir, {
      virsh: `exec node ${fixturePath('../unit/probe/stand-in-virsh.mjs')} "$@"`,
      drbdadm: `case "$1" in --version) cat "${realDir}/drbdadm-version.txt" ;; dump) cat "${realDir}/drbdadm-dump.txt" ;; *) exit 1 ;; esac`,
      lvm: `echo '  WARNING: This is what LVM says on stderr while succeeding.' >&2; cat "${dir}/lvm-report.json"`,
      ip: `echo '[{"ifname":"br0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"operstate":"UP","linkinfo":{"info_kind":"bridge"}}]'`,
      xdelta3: 'exit 0',
      // Asked only where the DRBD module is loaded: there, the kernel knows no resource and logged nothing.
      drbdsetup: 'exit 0',
      dmesg: 'exit 0',
    });

    const opts = { volumeGroup: 'vg-pmc', bridge: 'br0', backupDir: '/nonexistent-pmc-backup' };
    const env = { ...process.env, PATH, PMC_STAND_IN_VIRSH: virshDir };
    const stdout = run(buildProbeScript(opts), env);
    const facts = parseProbeOutput(stdout, opts);

    assert.deepEqual(facts.vg, { name: 'vg-pmc', sizeBytes: 4290772992, freeBytes: 3217031168, extentSizeBytes: undefined });
    assert.deepEqual(facts.lvs.map((lv) => [lv.path, lv.sizeBytes]), [['/dev/vg-pmc/test-vm', 1073741824]]);
    assert.deepEqual(facts.bridge, { name: 'br0', present: true, isBridge: true, up: true, carrier: true, operState: 'UP' });
    assert.equal(facts.tools.xdelta3, true);
    assert.equal(facts.backupDirExists, false);
    assert.equal(facts.drbd.utilsVersion, '9.22.0');
    assert.deepEqual(facts.libvirt.version, { library: '9.0.0', hypervisor: { name: 'QEMU', version: '7.2.22' } });

    assert.deepEqual(facts.domains.map((d) => [d.name, d.uuid, d.state, d.stateReason, d.autostart, d.persistent]), [
      ['test-vm', 'd2fd4e59-ee6a-4d1e-aee0-f5ae227a41ab', 'running', 'migrated', false, true],
      ["web 1'", '11111111-2222-3333-4444-555555555555', 'shut off', 'destroyed', false, true],
    ]);
    assert.equal(facts.domains[0]?.xml, real('virsh-dumpxml.inactive.xml'));
    assert.equal(facts.domains[1]?.xml, web1Xml, 'marker-like lines inside the XML come through unchanged');
    assert.equal(facts.domains[0]?.disks[0]?.source, '/dev/drbd10');

    // Configured (by pm-1 and pm-2, which this machine is not) but down: with or without the module, no kernel resource.
    const [resource] = facts.drbdResources;
    assert.deepEqual([resource?.name, resource?.configured, resource?.up, resource?.minor, resource?.port, resource?.role],
      ['test-vm', true, false, 10, 7788, undefined]);
    assert.match(facts.problems.join('\n'), new RegExp(`resource test-vm has no "on ${os.hostname()}" section`));
    assert.doesNotMatch(facts.problems.join('\n'), /^(vgs|lvs|bridge|virsh|domain|drbdadm)/m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('storage.shared: the directory, its marker and its disk files are read in one section; absent is a fact', (t) => {
  const dir = tempDirFor(t, 'probe-shared');
  writeFileSync(path.join(dir, '.pmc-shared-id'), '6f1c2a9e0b7d4e3f8a5c1d2e3f4a5b6c\n');
  writeFileSync(path.join(dir, 'web 1.img'), Buffer.alloc(4096));
  writeFileSync(path.join(dir, 'db.img'), Buffer.alloc(1024));
  writeFileSync(path.join(dir, 'notes.txt'), 'not a disk');
  mkdirSync(path.join(dir, 'sub.img'));
  const opts = { ...OPTS, sharedDir: dir };
  const facts = parseProbeOutput(run(buildProbeScript(opts)), opts);
  assert.equal(facts.shared?.present, true);
  assert.equal(facts.shared?.mountPoint, false, 'a temporary directory is not a mount point');
  assert.equal(facts.shared?.id, '6f1c2a9e0b7d4e3f8a5c1d2e3f4a5b6c');
  assert.equal(typeof facts.shared?.fsType, 'string');
  assert.deepEqual(facts.shared?.files.sort((a, b) => a.name.localeCompare(b.name)), [{ name: 'db.img', sizeBytes: 1024 }, { name: 'web 1.img', sizeBytes: 4096 }]);
  assert.doesNotMatch(facts.problems.join('\n'), /shared-storage/);

  const absent = { ...OPTS, sharedDir: path.join(dir, 'not-mounted') };
  const none = parseProbeOutput(run(buildProbeScript(absent)), absent);
  assert.deepEqual(none.shared, {
    directory: absent.sharedDir, present: false, mountPoint: false, fsType: undefined, id: undefined, files: [], failure: undefined,
  });
  assert.equal(parseProbeOutput(run(buildProbeScript(OPTS)), OPTS).shared, undefined, 'not configured: not read');
});
