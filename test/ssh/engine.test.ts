/**
 * The execution engine against real OpenSSH servers on loopback (two "nodes" on this machine):
 * applyPlan's success, undo in reverse order of completion, an undo that fails, a node lost
 * in the middle, steps that run at the same time, Ctrl-C (once, twice, before a step that must
 * not be interrupted), and the cluster lock (waiting, giving up, freed when a manager dies).
 * The steps are real shell commands; their effects are files the test reads back. Waits are
 * rendezvous on files, never timings.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { StopToken } from '../../src/ops/engine/context.js';
import { applyPlan, type ApplyOptions } from '../../src/ops/engine/execute.js';
import { lockNodes } from '../../src/ops/engine/lock.js';
import type { Plan, Step } from '../../src/ops/engine/plan.js';
import { SshPool } from '../../src/ssh/pool.js';
import type { SshTarget } from '../../src/ssh/types.js';
import { isPmcError } from '../../src/util/errors.js';
import { quote } from '../../src/util/shell.js';
import { generateKey, knownHostsLine, startSshd, sshdSkip, tempDir, type KeyPair, type Sshd } from './sshd.js';

describe('engine: applyPlan and the cluster lock over real SSH', { skip: sshdSkip }, () => {
  let dir: string;
  let key: KeyPair;
  let a: Sshd;
  let b: Sshd;
  let knownHosts: string;
  let caseCount = 0;

  before(async () => {
    dir = await tempDir('engine');
    key = await generateKey(dir, 'client');
    const authorized = join(dir, 'authorized_keys');
    await writeFile(authorized, `${key.publicLine}\n`);
    [a, b] = await Promise.all([
      startSshd({ dir, host: '127.0.0.1', authorizedKeysFile: authorized }),
      startSshd({ dir, host: '127.0.0.2', authorizedKeysFile: authorized }),
    ]);
    knownHosts = join(dir, 'known_hosts');
    await writeFile(knownHosts, `${knownHostsLine(a, 'ed25519')}\n${knownHostsLine(b, 'ed25519')}\n`);
  });

  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await rm(dir, { recursive: true, force: true });
  });

  function target(name: string, sshd: Sshd): SshTarget {
    return {
      name, host: sshd.host, port: sshd.port, user: 'root', identityFiles: [key.privateFile], agentSocket: undefined,
      knownHostsFiles: [knownHosts], connectTimeoutMs: 5000, keepaliveIntervalMs: 10_000, jump: undefined, sudo: false,
    };
  }

  function pool(t: TestContext): SshPool {
    const p = new SshPool([target('pm-a', a), target('pm-b', b)]);
    t.after(() => p.close());
    return p;
  }

  /** A fresh directory for one case's files; `f(name)` is a path in it, quoted for the shell. */
  async function workspace(): Promise<{ path: (name: string) => string; f: (name: string) => string; log: () => Promise<string[]> }> {
    const here = join(dir, `case-${++caseCount}`);
    await mkdir(here);
    const path = (name: string) => join(here, name);
    return {
      path,
      f: (name) => quote(path(name)),
      log: async () => (existsSync(path('log')) ? (await readFile(path('log'), 'utf8')).trim().split('\n') : []),
    };
  }

  /** A step that creates a file and logs it; its undo removes it and logs that. */
  function create(ws: Awaited<ReturnType<typeof workspace>>, node: string, name: string, extra: Partial<Step> = {}): Step {
    return {
      node,
      command: `touch ${ws.f(name)} && echo ${quote(`do ${name}`)} >> ${ws.f('log')}`,
      why: `create ${name}`,
      undo: { command: `rm ${ws.f(name)} && echo ${quote(`undo ${name}`)} >> ${ws.f('log')}`, why: `remove ${name}` },
      ...extra,
    };
  }

  /** Waits (on the node) until the test creates `name`. */
  function waitFor(ws: Awaited<ReturnType<typeof workspace>>, name: string): string {
    return `until [ -e ${ws.f(name)} ]; do sleep 0.05; done`;
  }

  /** Resolves once `file` exists (the test's side of a rendezvous). */
  async function appears(file: string): Promise<void> {
    while (!existsSync(file)) await new Promise((resolve) => setTimeout(resolve, 20));
  }

  const quiet = (lines: string[] = []): ApplyOptions => ({ log: (line) => lines.push(line) });

  test('success: every step runs in order, nothing is undone', async (t) => {
    const ws = await workspace();
    const plan: Plan = { title: 'three files', steps: [create(ws, 'pm-a', 'x'), create(ws, 'pm-b', 'y'), create(ws, 'pm-a', 'z')], notes: [] };
    const result = await applyPlan(pool(t), plan, quiet());
    assert.equal(result.status, 'applied');
    assert.deepEqual(result.done.map((r) => r.index), [0, 1, 2]);
    assert.deepEqual(await ws.log(), ['do x', 'do y', 'do z']);
    assert.deepEqual(result.undone, []);
    assert.deepEqual(result.remaining, []);
  });

  test('a failing step: the completed steps are undone in reverse order, and the failure says where and why', async (t) => {
    const ws = await workspace();
    const plan: Plan = {
      title: 'fails third',
      steps: [create(ws, 'pm-a', 'x'), create(ws, 'pm-b', 'y'), { node: 'pm-a', command: 'echo no space left >&2; exit 5', why: 'fail' }, create(ws, 'pm-b', 'never')],
      notes: [],
    };
    const result = await applyPlan(pool(t), plan, quiet());
    assert.equal(result.status, 'failed');
    assert.equal(result.failed?.index, 2);
    assert.equal(result.failed?.error, 'exit 5: no space left');
    assert.deepEqual(await ws.log(), ['do x', 'do y', 'undo y', 'undo x']);
    assert.ok(!existsSync(ws.path('x')) && !existsSync(ws.path('y')) && !existsSync(ws.path('never')));
    assert.deepEqual(result.undone.map((u) => [u.step.node, u.ok]), [['pm-b', true], ['pm-a', true]]);
    assert.deepEqual(result.remaining, []);
  });

  test('an undo that fails: the other undos still run, and what remains is listed with the reason', async (t) => {
    const ws = await workspace();
    const stuck = create(ws, 'pm-b', 'y');
    stuck.undo = { command: 'echo device busy >&2; exit 3', why: 'remove y' };
    const plan: Plan = { title: 'undo fails', steps: [create(ws, 'pm-a', 'x'), stuck, { node: 'pm-a', command: 'false', why: 'fail' }], notes: [] };
    const result = await applyPlan(pool(t), plan, quiet());
    assert.equal(result.status, 'failed');
    assert.deepEqual(result.undone.map((u) => [u.step.node, u.ok]), [['pm-b', false], ['pm-a', true]]);
    assert.deepEqual(result.remaining, [{ node: 'pm-b', done: 'create y', undo: 'echo device busy >&2; exit 3', reason: 'the undo failed: exit 3: device busy' }]);
    assert.ok(existsSync(ws.path('y')) && !existsSync(ws.path('x')));
  });

  test('a node lost mid-plan: the step fails with the reason, the other node is undone, the lost node\'s undos are listed as not done', async (t) => {
    const ws = await workspace();
    const plan: Plan = {
      title: 'loses pm-a',
      steps: [
        create(ws, 'pm-a', 'x'),
        create(ws, 'pm-b', 'y'),
        // Kills this connection's sshd session process: for pmc, pm-a is gone.
        { node: 'pm-a', command: 'kill -9 $PPID', why: 'lose the node' },
      ],
      notes: [],
    };
    const result = await applyPlan(pool(t), plan, quiet());
    assert.equal(result.status, 'failed');
    assert.equal(result.failed?.index, 2);
    assert.match(result.failed!.error!, /^pm-a: connection to 127\.0\.0\.1:\d+ lost/);
    assert.deepEqual(await ws.log(), ['do x', 'do y', 'undo y']);
    assert.equal(result.remaining.length, 1);
    assert.equal(result.remaining[0]!.node, 'pm-a');
    assert.equal(result.remaining[0]!.done, 'create x');
    assert.match(result.remaining[0]!.reason, /^the undo failed: pm-a: connection to .* lost/);
    assert.ok(existsSync(ws.path('x')));
  });

  test('steps that depend on nothing run at the same time; undo follows the order they finished in', async (t) => {
    const ws = await workspace();
    // Each waits for the other's file: run one after the other, they would time out.
    const meet = (me: string, other: string): string => `touch ${ws.f(me)} && ${waitFor(ws, other)}`;
    const plan: Plan = {
      title: 'rendezvous',
      steps: [
        { ...create(ws, 'pm-a', 'a1'), id: 'a1', after: [] },
        { ...create(ws, 'pm-b', 'b1'), id: 'b1', after: [] },
        { id: 'a2', after: ['a1'], node: 'pm-a', command: meet('a-ready', 'b-ready'), why: 'meet b', timeoutMs: 60_000 },
        { id: 'b2', after: ['b1'], node: 'pm-b', command: meet('b-ready', 'a-ready'), why: 'meet a', timeoutMs: 60_000 },
        // After both: fails, so everything is undone.
        { after: ['a2', 'b2'], node: 'pm-b', command: `${waitFor(ws, 'a-ready')} && exit 1`, why: 'fail at the end' },
      ],
      notes: [],
    };
    const result = await applyPlan(pool(t), plan, quiet());
    assert.equal(result.failed?.index, 4, JSON.stringify(result.failed?.error));
    assert.deepEqual(new Set(result.done.map((r) => r.index)), new Set([0, 1, 2, 3]));
    const finished = result.done.filter((r) => r.step.undo).map((r) => r.step.why.replace('create ', ''));
    assert.deepEqual(result.undone.map((u) => u.step.why.replace('remove ', '')), [...finished].reverse());
  });

  test('a plan whose step runs after an unknown or later step is refused before anything runs', async (t) => {
    const ws = await workspace();
    const plan: Plan = { title: 'bad', steps: [{ ...create(ws, 'pm-a', 'x'), after: ['later'] }, { ...create(ws, 'pm-a', 'y'), id: 'later' }], notes: [] };
    await assert.rejects(applyPlan(pool(t), plan, quiet()), /step 1 runs after "later", which is not an earlier step/);
    assert.deepEqual(await ws.log(), []);
  });

  test('Ctrl-C: the running step finishes, no other starts, what was done is undone', async (t) => {
    const ws = await workspace();
    const stop = new StopToken();
    const lines: string[] = [];
    const plan: Plan = {
      title: 'interrupted',
      steps: [create(ws, 'pm-a', 'x'), { ...create(ws, 'pm-b', 'y'), command: `${create(ws, 'pm-b', 'y').command} && touch ${ws.f('running')} && ${waitFor(ws, 'go')}` }, create(ws, 'pm-a', 'z')],
      notes: [],
    };
    const applying = applyPlan(pool(t), plan, { log: (l) => lines.push(l), stop });
    await appears(ws.path('running'));
    stop.request('SIGINT');
    await writeFile(ws.path('go'), '');
    const result = await applying;
    assert.equal(result.status, 'interrupted');
    assert.equal(result.interrupted, 'SIGINT');
    assert.deepEqual(await ws.log(), ['do x', 'do y', 'undo y', 'undo x']);
    assert.ok(lines.some((l) => /^SIGINT: stopping after the running step \(pm-b: create y\), then undoing/.test(l)), lines.join('\n'));
  });

  test('a second Ctrl-C stops the undo, and the result lists exactly what remains on which node', async (t) => {
    const ws = await workspace();
    const stop = new StopToken();
    const slowUndo = create(ws, 'pm-b', 'y');
    slowUndo.undo = { command: `${slowUndo.undo!.command} && touch ${ws.f('undoing')} && ${waitFor(ws, 'go2')}`, why: 'remove y' };
    const plan: Plan = {
      title: 'halted',
      steps: [create(ws, 'pm-a', 'x'), slowUndo, { node: 'pm-a', command: `touch ${ws.f('running')} && ${waitFor(ws, 'go')}`, why: 'wait' }, create(ws, 'pm-a', 'z')],
      notes: [],
    };
    const applying = applyPlan(pool(t), plan, { log: () => undefined, stop });
    await appears(ws.path('running'));
    stop.request('SIGINT');
    await writeFile(ws.path('go'), '');
    await appears(ws.path('undoing'));
    stop.request('SIGINT');
    await writeFile(ws.path('go2'), '');
    const result = await applying;
    assert.equal(result.status, 'interrupted');
    assert.deepEqual(await ws.log(), ['do x', 'do y', 'undo y']);
    assert.deepEqual(result.remaining, [{ node: 'pm-a', done: 'create x', undo: plan.steps[0]!.undo!.command, reason: 'not undone: stopped by SIGINT again' }]);
    assert.ok(existsSync(ws.path('x')));
  });

  test('a step marked uninterruptible still runs when Ctrl-C comes during the step before it, and says why', async (t) => {
    const ws = await workspace();
    const stop = new StopToken();
    const lines: string[] = [];
    const plan: Plan = {
      title: 'migration-like',
      steps: [
        { ...create(ws, 'pm-a', 'x'), command: `${create(ws, 'pm-a', 'x').command} && touch ${ws.f('running')} && ${waitFor(ws, 'go')}` },
        { ...create(ws, 'pm-b', 'y'), uninterruptible: 'x without y is two primaries' },
        create(ws, 'pm-a', 'z'),
      ],
      notes: [],
    };
    const applying = applyPlan(pool(t), plan, { log: (l) => lines.push(l), stop });
    await appears(ws.path('running'));
    stop.request('SIGTERM');
    await writeFile(ws.path('go'), '');
    const result = await applying;
    assert.equal(result.status, 'interrupted');
    assert.deepEqual(await ws.log(), ['do x', 'do y', 'undo y', 'undo x']);
    assert.ok(lines.includes('not stopping before pm-b: create y: x without y is two primaries'), lines.join('\n'));
  });

  describe('the cluster lock', () => {
    const manager = (t: TestContext, name: string, waitLockSeconds: number, lines: string[] = []) => ({
      pool: pool(t), log: (l: string) => lines.push(l), stop: new StopToken(), waitLockSeconds,
      invocation: { who: `${name}@manager`, pid: 4242, command: `pmc vm add ${name}` },
    });

    /** Whether someone holds the lock file (this machine is both nodes). */
    /** One lock directory per node: both "nodes" share this machine's files. */
    async function lockDirs(base: string): Promise<string> {
      await Promise.all(['pm-a', 'pm-b'].map((node) => mkdir(join(base, node))));
      return base;
    }

    function held(lockDir: string, node = 'pm-a'): boolean {
      return spawnSync('flock', ['-n', join(lockDir, node, 'pmc.lock'), 'true']).status !== 0;
    }

    test('a second run waits, naming the holder, gives up with PMC_E_LOCKED; once released it gets the lock', async (t) => {
      const ws = await workspace();
      const lockDir = await lockDirs(ws.path(''));
      const first = await lockNodes(manager(t, 'alice', 10), ['pm-b', 'pm-a'], { dir: (node) => join(lockDir, node) });
      assert.deepEqual(first.nodes, ['pm-a', 'pm-b']);
      assert.ok(held(lockDir, 'pm-a') && held(lockDir, 'pm-b'));
      assert.match(await readFile(join(lockDir, 'pm-a', 'pmc.holder'), 'utf8'), /^alice@manager pid 4242: pmc vm add alice since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n$/);

      const lines: string[] = [];
      await assert.rejects(lockNodes(manager(t, 'bob', 1, lines), ['pm-a'], { dir: (node) => join(lockDir, node) }), (err: unknown) => isPmcError(err) && err.code === 'PMC_E_LOCKED'
        && /^pm-a is locked by alice@manager pid 4242: pmc vm add alice since .*; waited 1 s, nothing was changed$/.test(err.message));
      assert.ok(lines.some((l) => /^pm-a: waiting up to 1 s for the pmc lock, held by alice@manager pid 4242: pmc vm add alice since /.test(l)), lines.join('\n'));

      const waiting = lockNodes(manager(t, 'carol', 120), ['pm-a'], { dir: (node) => join(lockDir, node) });
      await first.release();
      const second = await waiting;
      assert.deepEqual(second.nodes, ['pm-a']);
      assert.match(await readFile(join(lockDir, 'pm-a', 'pmc.holder'), 'utf8'), /^carol@manager /);
      await second.release();
      assert.equal(held(lockDir), false);
    });

    test('a manager that dies (its connection closes) frees the lock by itself', async (t) => {
      const ws = await workspace();
      const lockDir = await lockDirs(ws.path(''));
      const doomed = manager(t, 'dave', 10);
      await lockNodes(doomed, ['pm-a'], { dir: (node) => join(lockDir, node) });
      assert.ok(held(lockDir));
      // What the kernel does to a killed manager's sockets: the connection closes without a release.
      await doomed.pool.close();
      // Well under the 60 s lease: only the holder's reading EOF can free it in time.
      const next = await lockNodes(manager(t, 'erin', 30), ['pm-a'], { dir: (node) => join(lockDir, node) });
      assert.deepEqual(next.nodes, ['pm-a']);
      await next.release();
    });

    test('Ctrl-C while waiting: PMC_E_INTERRUPTED, and the waiter leaves the node at once', async (t) => {
      const ws = await workspace();
      const lockDir = await lockDirs(ws.path(''));
      const holder = await lockNodes(manager(t, 'frank', 10), ['pm-a'], { dir: (node) => join(lockDir, node) });
      const lines: string[] = [];
      const impatient = manager(t, 'grace', 600, lines);
      const waiting = lockNodes(impatient, ['pm-a'], { dir: (node) => join(lockDir, node) });
      while (!lines.some((l) => l.includes('waiting up to'))) await new Promise((resolve) => setTimeout(resolve, 20));
      impatient.stop.request('SIGINT');
      await assert.rejects(waiting, (err: unknown) => isPmcError(err) && err.code === 'PMC_E_INTERRUPTED');
      assert.match(await readFile(join(lockDir, 'pm-a', 'pmc.holder'), 'utf8'), /^frank@manager /);
      await holder.release();
    });
  });
});
