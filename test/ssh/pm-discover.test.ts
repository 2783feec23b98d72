// pmc pm discover end to end on loopback: a node (this machine, through a real sshd) whose DRBD
// configuration names a peer pmc.yaml does not list and whose avahi-browse announces that peer
// and another host (stand-ins for drbdadm and avahi-browse on the node's PATH), and the peer
// itself, another sshd, found again by the scan of 127.0.0.0/29. What the user sees: the
// candidates with how each was found, the fingerprint ssh-keygen gives for the peer's host key,
// the pm add to paste; the node's own address is not scanned; nothing is written.
import assert from 'node:assert/strict';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { main } from '../../src/cli/main.js';
import { generateKey, knownHostsLine, run, sshdSkip, startSshd, tempDir, type KeyPair, type Sshd } from './sshd.js';

async function pmc(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (t) => { out += t; }, err: (t) => { err += t; } }, { ...process.env, NO_COLOR: '1' });
  return { code, out, err };
}

/** drbdadm as the node runs it: one resource, web-1, between this machine and pm-new at 127.0.0.5. */
const DRBDADM = `#!/bin/sh
case "$1" in
  --version) echo DRBDADM_VERSION_CODE=0x091600; echo DRBDADM_VERSION=9.22.0 ;;
  dump) cat <<EOF
resource web-1 {
    on $(cat /proc/sys/kernel/hostname) {
        device /dev/drbd10 minor 10;
        disk /dev/vg-pmc/web-1;
        meta-disk internal;
        address ipv4 127.0.0.1:7788;
    }
    on pm-new {
        device /dev/drbd10 minor 10;
        disk /dev/vg-pmc/web-1;
        meta-disk internal;
        address ipv4 127.0.0.5:7788;
    }
}
EOF
  ;;
  *) exit 1 ;;
esac
`;

/** avahi-browse -tpr _ssh._tcp: pm-new, the node itself, an IPv6 answer, and a printer where nothing listens. */
const AVAHI_BROWSE = `#!/bin/sh
[ "$*" = "-tpr _ssh._tcp" ] || exit 2
cat <<'EOF'
+;lo;IPv4;pm-new;SSH Remote Terminal;local
=;lo;IPv4;pm-new;SSH Remote Terminal;local;pm-new.local;127.0.0.5;22;
=;lo;IPv4;this-node;SSH Remote Terminal;local;this-node.local;127.0.0.1;22;
=;lo;IPv6;pm-new;SSH Remote Terminal;local;pm-new.local;::1;22;
=;lo;IPv4;Office\\032printer;SSH Remote Terminal;local;office-printer.local;127.0.0.9;22;"model=x;y"
EOF
`;

interface Discovered {
  candidates: Array<{ address: string; name?: string; foundBy: unknown[]; ssh: { answered: boolean; keyType?: string; fingerprint?: string; problem?: string }; add?: string }>;
  sources: { drbd: string[]; mdns: { node: string; status: string }[]; scan: { subnets: string[]; addresses: number } };
}

describe('pm discover against real sshd', { skip: sshdSkip }, () => {
  let dir: string;
  let client: KeyPair;
  let node: Sshd;
  let peer: Sshd;
  let configFile: string;
  let knownHosts: string;
  let fingerprint: string;

  before(async () => {
    dir = await tempDir('pm-discover');
    client = await generateKey(dir, 'client');
    const authorizedKeys = join(dir, 'authorized_keys');
    await writeFile(authorizedKeys, `${client.publicLine}\n`);
    const bin = join(dir, 'bin');
    await mkdir(bin);
    for (const [tool, script] of [['drbdadm', DRBDADM], ['avahi-browse', AVAHI_BROWSE]] as const) {
      await writeFile(join(bin, tool), script);
      await chmod(join(bin, tool), 0o755);
    }
    [node, peer] = await Promise.all([
      startSshd({ dir, host: '127.0.0.1', authorizedKeysFile: authorizedKeys, env: { PATH: `${bin}:/usr/local/bin:/usr/bin:/bin` } }),
      startSshd({ dir, host: '127.0.0.5', authorizedKeysFile: authorizedKeys }),
    ]);
    configFile = join(dir, 'pmc.yaml');
    knownHosts = join(dir, 'known_hosts');
    fingerprint = (await run('ssh-keygen', ['-lf', peer.hostKeys.ed25519.publicFile])).split(' ')[1]!;
  });

  after(async () => {
    await Promise.all([node?.stop(), peer?.stop()]);
    await rm(dir, { recursive: true, force: true });
  });

  /** pmc.yaml lists only the node; new nodes would be reached on the peer's port. Returns a check that neither file changed. */
  async function freshFiles(known: string[] = []): Promise<() => Promise<void>> {
    const config = [
      'nodes:',
      '  - name: pm-a',
      `    address: ${node.host}`,
      `    ssh: { port: ${node.port} }`,
      'ssh:',
      `  port: ${peer.port}`,
      `  identityFiles: [${client.privateFile}]`,
      '  agent: false',
      `  knownHosts: ${knownHosts}`,
      '  connectTimeout: 5',
      '',
    ].join('\n');
    const knownText = [knownHostsLine(node, 'ed25519'), ...known].map((l) => `${l}\n`).join('');
    await writeFile(configFile, config);
    await writeFile(knownHosts, knownText);
    return async () => {
      assert.equal(await readFile(configFile, 'utf8'), config);
      assert.equal(await readFile(knownHosts, 'utf8'), knownText);
    };
  }

  test('--json: the DRBD peer, found three ways, with the fingerprint ssh-keygen gives; the mDNS host that does not answer; nothing written', async () => {
    const unchanged = await freshFiles();
    const r = await pmc('pm', 'discover', '--json', '--subnet', '127.0.0.0/29', '--config', configFile);
    assert.equal(r.code, 0, r.err);
    const data = JSON.parse(r.out) as Discovered;
    assert.deepEqual(data.candidates.map((c) => [c.address, c.name]), [['127.0.0.5', 'pm-new'], ['127.0.0.9', 'office-printer']]);
    const [pmNew, printer] = data.candidates;
    assert.deepEqual(pmNew!.foundBy, [
      { source: 'drbd-peer', vm: 'web-1', node: 'pm-a' },
      { source: 'mdns', node: 'pm-a', service: 'pm-new' },
      { source: 'subnet-scan', subnet: '127.0.0.0/29' },
    ]);
    assert.deepEqual(pmNew!.ssh, { answered: true, keyType: 'ssh-ed25519', fingerprint });
    assert.equal(pmNew!.add, `pmc pm add pm-new --address 127.0.0.5 --fingerprint ${fingerprint} --config ${configFile}`);
    assert.deepEqual(printer!.foundBy, [{ source: 'mdns', node: 'pm-a', service: 'Office\\032printer' }]);
    assert.equal(printer!.ssh.answered, false);
    assert.match(printer!.ssh.problem!, /connection refused on 127\.0\.0\.9:\d+/);
    assert.equal(printer!.add, undefined);
    // The node's own address (127.0.0.1) is not among the scanned ones: .2 to .6.
    assert.deepEqual(data.sources.scan, { subnets: ['127.0.0.0/29'], addresses: 5, timeoutMs: 2000, notes: [] });
    assert.deepEqual(data.sources.drbd, ['pm-a']);
    assert.deepEqual(data.sources.mdns, [{ node: 'pm-a', status: 'read' }]);
    await unchanged();
  });

  test('for a person: each candidate, how it was found, its key and the command to paste', async () => {
    const unchanged = await freshFiles();
    const r = await pmc('pm', 'discover', '--subnet', '127.0.0.0/29', '--config', configFile);
    assert.equal(r.code, 0, r.err);
    const lines = r.out.split('\n');
    assert.deepEqual(lines.slice(0, 6), [
      `2 candidate nodes not in ${configFile}:`,
      '',
      '127.0.0.5  pm-new',
      '  found by: DRBD peer of VM web-1 on pm-a; mDNS on pm-a (service pm-new); answers SSH in 127.0.0.0/29',
      `  host key: ssh-ed25519 ${fingerprint}`,
      `  add:      pmc pm add pm-new --address 127.0.0.5 --fingerprint ${fingerprint} --config ${configFile}`,
    ]);
    assert.deepEqual(lines.slice(7, 10), [
      '127.0.0.9  office-printer',
      '  found by: mDNS on pm-a (service Office\\032printer)',
      `  ssh:      no answer (office-printer: connection refused on 127.0.0.9:${peer.port})`,
    ]);
    assert.match(r.out, /Nothing is trusted by being found/);
    assert.match(r.out, /looked at: DRBD resources on pm-a; mDNS on pm-a; SSH from this machine to 5 addresses of 127\.0\.0\.0\/29/);
    await unchanged();
  });

  test('a host whose key contradicts known_hosts is listed with the refusal, and no command to add it', async () => {
    const impostor = await generateKey(dir, 'impostor');
    const [type, key] = impostor.publicLine.split(' ');
    const unchanged = await freshFiles([`[${peer.host}]:${peer.port} ${type} ${key}`]);
    const r = await pmc('pm', 'discover', '--json', '--subnet', '127.0.0.5', '--config', configFile);
    assert.equal(r.code, 0, r.err);
    const pmNew = (JSON.parse(r.out) as Discovered).candidates.find((c) => c.address === '127.0.0.5')!;
    assert.equal(pmNew.ssh.answered, true);
    assert.equal(pmNew.ssh.fingerprint, undefined);
    assert.match(pmNew.ssh.problem!, /REMOTE HOST IDENTIFICATION HAS CHANGED/);
    assert.equal(pmNew.add, undefined);
    await unchanged();
  });
});
