// The execution engine on the real cluster: the cluster lock (two vm add at once on one pair
// both succeed, with different minors and ports read from drbdsetup show on the nodes; a
// manager killed with SIGKILL frees its lock), Ctrl-C during vm add (nothing left on any node:
// lvs, /etc/drbd.d, virsh list --all), and pmc log reading the nodes' journals back.
// Tiny VMs that are never started; only `lk-` names, DRBD minors 800-849, ports 9800-9849.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fullSetOnly, labExec, labExecOk, VOLUME_GROUP, waitFor, waitForNode } from "./lab.ts";
import { labConfigFor, pmc, pmcChild, pmcJson } from "./pmc.ts";

const PAIR = ["pm-1", "pm-3"];
const config = labConfigFor("engine", { minors: [800, 849], ports: [9800, 9849] }, "domainType: qemu\n");
const add = (name: string) => ["vm", "add", "-p", PAIR[0]!, "-p", PAIR[1]!, "-s", "64M", "-m", "64M", "--no-start", name];

const CLEAN = [
  "for d in $(virsh list --all --name | grep '^lk-'); do virsh destroy \"$d\"; virsh undefine --nvram \"$d\"; done",
  "for r in /etc/drbd.d/lk-*.res; do [ -e \"$r\" ] && drbdadm down \"$(basename \"$r\" .res)\"; done",
  "for r in $(drbdsetup show 2>/dev/null | sed -n 's/^resource \\(lk-[a-z0-9-]*\\) .*/\\1/p'); do drbdsetup down \"$r\"; done",
  "rm -f /etc/drbd.d/lk-*.res /etc/drbd.d/lk-*.res.tmp",
  `for l in $(lvs --noheadings -o lv_name ${VOLUME_GROUP} | grep '^ *lk-'); do lvremove -q -y ${VOLUME_GROUP}/$l; done`,
].join("; ");
/** What a node holds of lk- VMs: prints nothing on a clean node. */
const LEFTOVERS = `{ virsh list --all --name; lvs --noheadings -o lv_name ${VOLUME_GROUP}; ls /etc/drbd.d; drbdsetup show | grep '^resource'; } 2>/dev/null | grep 'lk-'; true`;

async function cleanup(): Promise<void> {
  await Promise.all(PAIR.map((node) => waitFor(`${node} clean of lk- VMs`, async () => {
    await labExec(node, `${CLEAN} >/dev/null 2>&1; true`, { timeoutMs: 300_000 });
    const left = await labExec(node, LEFTOVERS, { timeoutMs: 60_000 });
    return left.exitCode === 0 && left.stdout.trim() === "";
  }, 600_000, 2000)));
}

/** The minor and the local port of a resource as the kernel runs it. */
async function drbdShow(node: string, name: string): Promise<{ minor: number; port: number }> {
  const out = await labExecOk(node, `drbdsetup show ${name}`);
  const minor = /device\s+minor\s+(\d+)/.exec(out);
  const port = /_this_host\s*\{\s*address\s+ipv4\s+[\d.]+:(\d+)/.exec(out);
  assert.ok(minor && port, `${node}: drbdsetup show ${name}:\n${out}`);
  return { minor: Number(minor[1]), port: Number(port[1]) };
}

interface LogRow { time: string; node: string; run: string; vm?: string; by: string; text: string }

describe("pmc engine on the lab", { timeout: 20 * 60_000 }, () => {
  const t0 = Date.now();
  before(async () => {
    await Promise.all(PAIR.map((n) => waitForNode(n, 600_000)));
    await cleanup();
  });
  after(async () => {
    await cleanup();
    fs.rmSync(path.dirname(config), { recursive: true, force: true });
    console.log(`# pmc-engine.test.ts: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  });

  it("two vm add started together on the same pair both succeed, with different minors and ports on both nodes", async () => {
    const [a, b] = await Promise.all([pmc(add("lk-a"), { config }), pmc(add("lk-b"), { config })]);
    assert.equal(a.exitCode, 0, a.stderr);
    assert.equal(b.exitCode, 0, b.stderr);
    // One of them found the other holding the lock, and said who.
    assert.match(a.stderr + b.stderr, /pm-1: waiting up to \d+ s for the pmc lock, held by \S+@\S+ pid \d+: pmc vm add .* lk-[ab] since /);
    for (const node of PAIR) {
      const [x, y] = await Promise.all([drbdShow(node, "lk-a"), drbdShow(node, "lk-b")]);
      assert.notEqual(x.minor, y.minor, `${node}: same minor`);
      assert.notEqual(x.port, y.port, `${node}: same port`);
      for (const r of [x, y]) assert.ok(r.minor >= 800 && r.minor <= 849 && r.port >= 9800 && r.port <= 9849, JSON.stringify(r));
    }
  });

  // Once pm-1 is Primary with its domain being defined (the most to undo); in the full set at
  // every other step before it as well (each undo has different work to do). The last step,
  // defining the peer, ends the plan: there is nothing after it to stop.
  const points = [
    { step: /\[12\/\d+\] pm-1: define the domain/, skip: false },
    ...[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11].map((i) => ({ step: new RegExp(`\\[${i}\\/\\d+\\] `), skip: fullSetOnly })),
  ];
  for (const { step, skip } of points) {
    it(`Ctrl-C during vm add at ${step.source}: the running step finishes, what was done is undone, nothing stays on any node`, { skip }, async () => {
      const run = pmcChild(add("lk-c"), { config });
      await run.until(step);
      run.child.kill("SIGINT");
      const r = await run.exit;
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /SIGINT: stopping after the running step/);
      assert.match(r.stdout, /^interrupted \(SIGINT\): add lk-c/m);
      assert.match(r.stdout, /undone:\n(    ok .*\n)+/);
      assert.doesNotMatch(r.stdout, /remains/);
      for (const node of PAIR) {
        const left = await labExecOk(node, `{ lvs --noheadings -o lv_name ${VOLUME_GROUP}; ls /etc/drbd.d; virsh list --all --name; drbdsetup show | grep '^resource'; } 2>/dev/null | grep 'lk-c'; true`);
        assert.equal(left.trim(), "", `${node} keeps: ${left}`);
      }
    });
  }

  it("SIGKILL of the manager while it holds the lock: the next command gets the lock at once", async () => {
    const run = pmcChild(add("lk-d"), { config });
    await waitFor("pm-1's lock to be held by the vm add of lk-d", async () => {
      const holder = await labExec("pm-1", "flock -n /run/lock/pmc.lock true || cat /run/lock/pmc.holder");
      return /vm add .* lk-d since/.test(holder.stdout) || undefined;
    }, 300_000, 500);
    run.child.kill("SIGKILL");
    await run.exit;
    // Within the SSH keepalive time (3 x 15 s): the holder on the node saw its connection close.
    const next = await pmc(["--wait-lock", "45", "vm", "stop", "lk-b"], { config });
    assert.equal(next.exitCode, 0, next.stderr);
    assert.doesNotMatch(next.stderr, /PMC_E_LOCKED/);
    for (const node of PAIR) assert.equal((await labExec(node, "flock -n /run/lock/pmc.lock true")).exitCode, 0, `${node} still locked`);
  });

  it("pmc log shows the steps of a vm add and a vm rm, from both nodes' journals", async () => {
    const removed = await pmc(["vm", "rm", "-f", "lk-a"], { config });
    assert.equal(removed.exitCode, 0, removed.stderr);
    const log = await pmcJson<LogRow[]>(["log", "lk-a", "--since=-1h"], { config });
    assert.equal(log.code, 0, log.stderr);
    // Only this file's runs: the journals keep every earlier run of the lab too.
    const since = new Date(t0 - 5000).toISOString();
    log.data = log.data.filter((e) => e.time >= since);
    const runs = [...new Set(log.data.map((e) => e.run))];
    assert.equal(runs.length, 2, JSON.stringify(log.data, null, 1));
    const [addRun, rmRun] = runs.map((id) => log.data.filter((e) => e.run === id));
    for (const node of PAIR) {
      assert.ok(addRun!.some((e) => e.node === node && /^start \(pid \d+, nodes pm-1,pm-3\): pmc vm add .* lk-a$/.test(e.text)), `${node}: start of vm add`);
      assert.ok(addRun!.some((e) => e.node === node && /^step \d+\/\d+ exit 0: \$ lvcreate .* -n lk-a (-- )?vg-pmc( && \{ blkdiscard .*)?$/.test(e.text)), `${node}: lvcreate`);
      assert.ok(addRun!.some((e) => e.node === node && /^end: applied: add lk-a /.test(e.text)), `${node}: end of vm add`);
      assert.ok(rmRun!.some((e) => e.node === node && /^step \d+\/\d+ exit 0: \$ lvremove -y \/dev\/vg-pmc\/lk-a$/.test(e.text)), `${node}: lvremove`);
      assert.ok(rmRun!.some((e) => e.node === node && /^end: applied: remove lk-a /.test(e.text)), `${node}: end of vm rm`);
    }
    const times = log.data.map((e) => e.time);
    assert.deepEqual(times, [...times].sort(), "merged in time order");
    const text = await pmc(["log", "lk-a", "--node", "pm-3"], { config });
    assert.equal(text.exitCode, 0, text.stderr);
    assert.match(text.stdout, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ  pm-3  [0-9a-f]{8}  lk-a  \S+@\S+  step \d+\/\d+ exit 0: \$ lvremove/m);
  });
});
