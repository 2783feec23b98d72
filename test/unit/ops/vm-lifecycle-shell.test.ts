// The remote shell side of the lifecycle commands: the shutdown-and-wait loop of `vm stop`,
// run by a real POSIX shell against a stand-in virsh, and the ssh command of `vm console`.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { buildCluster } from '../../../src/model/cluster.js';
import { consoleArgv, graphicalHint } from '../../../src/ops/vm/console.js';
import { planVmStop } from '../../../src/ops/vm/power.js';
import type { SshTarget } from '../../../src/ssh/types.js';
import { CONFIG, domain, pairedVm, probes } from '../model/factory.js';

const dir = mkdtempSync(join(tmpdir(), 'pmc-fake-virsh-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * A virsh that logs its arguments, answers `domstate` with "running" until it has been asked
 * `offAfter` times, then "shut off" (followed by the blank line the real one prints).
 */
writeFileSync(join(dir, 'virsh'), `#!/bin/sh
echo "$*" >> "$FAKE_LOG"
case "$1" in
  shutdown) [ -z "$FAKE_SHUTDOWN_FAILS" ] || { echo "error: domain is not running" >&2; exit 1; }
            echo "Domain '$2' is being shutdown"; echo ;;
  domstate) n=$(cat "$FAKE_COUNT" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "$FAKE_COUNT"
            if [ "$n" -ge "$FAKE_OFF_AFTER" ]; then echo "shut off"; else echo "running"; fi; echo ;;
esac
`);
chmodSync(join(dir, 'virsh'), 0o755);

/**
 * The loop's clock: `date +%s` reads it and `sleep N` moves it on by N (and logs the call), so
 * the deadline is reached after a known number of polls however slow the machine, and at once.
 */
writeFileSync(join(dir, 'date'), `#!/bin/sh
[ "$1" = +%s ] || exit 64
cat "$FAKE_CLOCK" 2>/dev/null || echo 1000
`);
writeFileSync(join(dir, 'sleep'), `#!/bin/sh
echo "sleep $*" >> "$FAKE_LOG"
now=$(cat "$FAKE_CLOCK" 2>/dev/null || echo 1000)
echo $((now + $1)) > "$FAKE_CLOCK"
`);
for (const tool of ['date', 'sleep']) chmodSync(join(dir, tool), 0o755);

function runShutdown(timeoutSeconds: number, env: Record<string, string>): { status: number | null; stderr: string; calls: string[] } {
  const state = buildCluster(CONFIG, probes(['pm-1', 'pm-2'], pairedVm('web', 'pm-1', 'pm-2', 10)));
  const step = planVmStop(state, 'web', CONFIG, { timeoutSeconds, force: false }).steps[0]!;
  const log = join(dir, `log-${Math.random()}`);
  // A loop that never ends is killed well past what it takes (instantly, on the fake clock) and fails the test.
  const r = spawnSync('sh', ['-c', step.command], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { PATH: `${dir}:${process.env.PATH}`, FAKE_LOG: log, FAKE_COUNT: `${log}.count`, FAKE_CLOCK: `${log}.clock`, ...env },
  });
  const calls = readFileSync(log, 'utf8').trim().split('\n');
  return { status: r.status, stderr: r.stderr, calls };
}

describe('vm stop: the shutdown-and-wait command', () => {
  test('asks once, polls once a second until the domain is shut off, exits 0', () => {
    const r = runShutdown(30, { FAKE_OFF_AFTER: '3' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.calls, [
      'shutdown uuid-of-web', 'domstate uuid-of-web', 'sleep 1', 'domstate uuid-of-web', 'sleep 1', 'domstate uuid-of-web',
    ]);
  });

  test('gives up once the timeout has passed, exits 1 and says so', () => {
    const r = runShutdown(3, { FAKE_OFF_AFTER: '1000' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /web did not shut down within 3 s; "pmc vm stop --force web" powers it off \(still running\)/);
    // Asked once, then a poll at 0, 1, 2 and 3 s: the last one finds the deadline reached.
    assert.deepEqual(r.calls, ['shutdown uuid-of-web', ...Array(3).fill(['domstate uuid-of-web', 'sleep 1']).flat(), 'domstate uuid-of-web']);
  });

  test('a refused shutdown fails at once, without polling', () => {
    const r = runShutdown(30, { FAKE_OFF_AFTER: '1', FAKE_SHUTDOWN_FAILS: '1' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /domain is not running/);
    assert.deepEqual(r.calls, ['shutdown uuid-of-web']);
  });
});

describe('vm console', () => {
  const target: SshTarget = {
    name: 'pm-1',
    host: '10.0.0.11',
    port: 2222,
    user: 'root',
    identityFiles: ['/keys/id_ed25519'],
    agentSocket: undefined,
    knownHostsFiles: ['/etc/pmc/known_hosts', '/root/.ssh/known_hosts'],
    connectTimeoutMs: 10_000,
    keepaliveIntervalMs: 15_000,
    sudo: false,
    jump: undefined,
  };

  test('ssh connects the way pmc does: user, port, key, strict known_hosts, no agent', () => {
    assert.deepEqual(consoleArgv(target, domain('web', 'running')), [
      'ssh', '-t', '-p', '2222', '-l', 'root',
      '-o', 'StrictHostKeyChecking=yes',
      '-o', 'UserKnownHostsFile="/etc/pmc/known_hosts" "/root/.ssh/known_hosts"',
      '-o', 'GlobalKnownHostsFile=/dev/null',
      '-o', 'ConnectTimeout=10',
      '-i', '/keys/id_ed25519',
      '-o', 'IdentityAgent=none',
      '10.0.0.11', 'virsh console uuid-of-web',
    ]);
  });

  test('a jump host gets the same checks through ProxyCommand; sudo and the host key alias are passed on', () => {
    const jump: SshTarget = { ...target, name: 'bastion (jump host)', host: 'bastion', port: 22, user: 'ops', agentSocket: '/run/agent' };
    const argv = consoleArgv({ ...target, jump, sudo: true, user: 'admin' }, domain('web', 'running'), 'pm-1');
    assert.ok(argv.includes('HostKeyAlias=pm-1'));
    const proxy = argv[argv.indexOf('-o', argv.indexOf('IdentityAgent=none')) + 1];
    assert.equal(proxy, `ProxyCommand=ssh -p 22 -l ops -o StrictHostKeyChecking=yes -o 'UserKnownHostsFile="/etc/pmc/known_hosts" "/root/.ssh/known_hosts"' `
      + '-o GlobalKnownHostsFile=/dev/null -o ConnectTimeout=10 -i /keys/id_ed25519 -W %h:%p bastion');
    assert.equal(argv.at(-1), 'sudo -n -- virsh console uuid-of-web');
  });

  test('known_hosts paths with spaces, quotes, backslashes and % reach ssh as one file each, also through ProxyCommand', () => {
    const files = ['/srv/pmc keys/known_hosts', `/tmp/it's "q" \\ 100%d`];
    const argv = consoleArgv({ ...target, knownHostsFiles: files }, domain('web', 'running'));
    // OpenSSH: double quotes keep a word whole, \" and \\ inside them are " and \, %% is %.
    assert.ok(argv.includes(`UserKnownHostsFile="/srv/pmc keys/known_hosts" "/tmp/it's \\"q\\" \\\\ 100%%d"`), argv.join(' | '));
    const jump: SshTarget = { ...target, name: 'bastion (jump host)', host: 'bastion', port: 22, knownHostsFiles: ['/a b/100%'] };
    const proxy = consoleArgv({ ...target, jump }, domain('web', 'running')).find((a) => a.startsWith('ProxyCommand='));
    // ProxyCommand is %-expanded once more before its shell runs it; %h:%p stay tokens.
    assert.equal(proxy, `ProxyCommand=ssh -p 22 -l root -o StrictHostKeyChecking=yes -o 'UserKnownHostsFile="/a b/100%%%%"' `
      + '-o GlobalKnownHostsFile=/dev/null -o ConnectTimeout=10 -i /keys/id_ed25519 -o IdentityAgent=none -W %h:%p bastion');
    assert.throws(() => consoleArgv({ ...target, knownHostsFiles: ['/home/${USER}/kh'] }, domain('web', 'running')), {
      code: 'PMC_E_CONFIG_INVALID', message: /environment variable/,
    });
  });

  test('the graphical console: a tunnel to the VNC port the node reports', () => {
    assert.match(graphicalHint('web', target, '127.0.0.1:1\n\n'),
      /^graphical console \(VNC 127\.0\.0\.1:5901 on pm-1\): run "ssh -N -L 5900:127\.0\.0\.1:5901 -p 2222 .* 10\.0\.0\.11", then point a VNC viewer at localhost:5900$/);
    assert.match(graphicalHint('web', target, ':0'), /VNC 127\.0\.0\.1:5900 on pm-1/);
    assert.match(graphicalHint('web', target, undefined), /^no graphical console: web has no VNC display/);
  });
});
