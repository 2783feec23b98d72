// The remote shell side of vm add, run by a real POSIX shell against stand-ins for ssh, dd and
// drbdadm: the node-to-node clone copy (which must fail when the reading side fails, though sh
// has no pipefail), the wait for DRBD to connect, and the resync wait with its progress lines.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { Plan } from '../../../src/ops/engine/plan.js';
import { drbdUsableBytes, planVmAdd } from '../../../src/ops/vm/add-plan.js';
import { pairedVm } from '../model/factory.js';
import { cluster, config, facts, GiB, request } from './vm-add-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'pmc-vm-add-shell-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function fake(name: string, script: string): void {
  writeFileSync(join(dir, name), `#!/bin/sh\n${script}\n`);
  chmodSync(join(dir, name), 0o755);
}

// ssh: logs its arguments one per line, writes some data, exits as told.
fake('ssh', 'printf "%s\\n" "$@" > "$FAKE_DIR/ssh.args"; echo disk-data; exit "${FAKE_SSH_RC:-0}"');
// dd: the writing side stores what it reads.
fake('dd', 'cat > "$FAKE_DIR/dd.out"');
// drbdadm: cstate/dstate answer with the next line of a script file; status shows progress.
fake('drbdadm', `case "$1" in
  cstate|dstate) f="$FAKE_DIR/$1"; head -n 1 "$f"; if [ "$(wc -l < "$f")" -gt 1 ]; then sed -i 1d "$f"; fi ;;
  status) echo "web role:Primary"; echo "    replication:SyncSource peer-disk:Inconsistent done:42.50" ;;
esac`);
// sleep: no waiting in tests.
fake('sleep', 'exit 0');

function run(command: string, env: Record<string, string> = {}) {
  return spawnSync('sh', ['-c', command], { encoding: 'utf8', env: { PATH: `${dir}:${process.env.PATH}`, FAKE_DIR: dir, ...env } });
}

function clonePlan(sourceAddress: string): Plan {
  const cfg = config();
  cfg.nodes[0]!.address = sourceAddress;
  const source = pairedVm('src', 'pm-1', 'pm-2', 110);
  for (const node of ['pm-1', 'pm-2']) source[node]!.drbdResources![0]!.sizeBytes = drbdUsableBytes(GiB);
  return planVmAdd(cluster(cfg, source), cfg, request({ nodes: ['pm-2', 'pm-3'], clone: { vm: 'src', from: undefined } }), facts());
}

describe('vm add: the clone copy between nodes', () => {
  // A node address is any string in pmc.yaml: it must reach ssh as one argument, never as shell code.
  const hostile = 'pm-1.example;touch /tmp/pmc-vm-add-pwned';
  const copy = clonePlan(hostile).steps.find((s) => s.progress && s.command.includes('dd'))!;

  test('reads on the source node through ssh, with every value as one argument', () => {
    const r = run(copy.command);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(readFileSync(join(dir, 'ssh.args'), 'utf8').trim().split('\n'), [
      '-o', 'BatchMode=yes', '--', hostile,
      `dd if=/dev/drbd110 bs=4M iflag=count_bytes count=${drbdUsableBytes(GiB)} status=progress`,
    ]);
    assert.equal(readFileSync(join(dir, 'dd.out'), 'utf8'), 'disk-data\n');
    assert.ok(!existsSync('/tmp/pmc-vm-add-pwned'));
  });

  test('fails when the reading side fails, although the writing dd succeeded', () => {
    const r = run(copy.command, { FAKE_SSH_RC: '1' });
    assert.notEqual(r.status, 0);
  });
});

describe('vm add: waiting for DRBD', () => {
  const blank = planVmAdd(cluster(config()), config(), request(), facts());

  test('the connect wait polls until Connected', () => {
    writeFileSync(join(dir, 'cstate'), 'WFConnection\nWFConnection\nConnected\n');
    const wait = blank.steps.find((s) => s.why.startsWith('wait until pm-1 and pm-2 connect'))!;
    const r = run(wait.command);
    assert.equal(r.status, 0, r.stderr);
  });

  test('the connect wait gives up and says the state', () => {
    writeFileSync(join(dir, 'cstate'), 'StandAlone\n');
    const wait = blank.steps.find((s) => s.why.startsWith('wait until pm-1 and pm-2 connect'))!;
    const r = run(wait.command);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /not Connected to pm-2 after 120 s: StandAlone/);
  });

  const resync = clonePlan('10.99.0.11').steps.find((s) => s.why.startsWith('wait until the peer\'s copy'))!;

  test('the resync wait prints progress until both disks are UpToDate', () => {
    writeFileSync(join(dir, 'dstate'), 'UpToDate/Inconsistent\nUpToDate/Inconsistent\nUpToDate/UpToDate\n');
    writeFileSync(join(dir, 'cstate'), 'SyncSource\n');
    const r = run(resync.command);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['SyncSource UpToDate/Inconsistent done:42.50', 'SyncSource UpToDate/Inconsistent done:42.50']);
  });

  test('the resync wait fails when the peer stays away for a minute', () => {
    writeFileSync(join(dir, 'dstate'), 'UpToDate/DUnknown\n');
    writeFileSync(join(dir, 'cstate'), 'WFConnection\n');
    const r = run(resync.command);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /the resync stopped for 60 s: WFConnection UpToDate\/DUnknown/);
  });
});
