// Interrupted migrations on the real cluster (npm run test:lab:full only): the pmc process
// SIGKILLed during virsh migrate, the link between the two nodes cut mid-migration, the
// target's QEMU killed mid-migration. Each ends with the VM running exactly once, one
// Primary, two primaries off, and pmc cluster verify clean for it, after at most
// pmc vm mv --cleanup. Holds the lab lock (test:lab does) for cutting the link.
// Shares the lab with other tests: only `mv-` names, DRBD minors 700-749, ports 9700-9749.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { cutLink, ensureLabUp, labExec, labExecOk, readCounter, restoreLink, sleep, waitFor } from "./lab.ts";
import { pmc, pmcChild, pmcJson } from "./pmc.ts";
import { assertSettled, config, createGuest, lvOf, NODES, removeGuest } from "./mv-guest.ts";

const VM = "mv-break";
const LV = lvOf(VM);
const started = Date.now();

/** Where the domain is active, read on the nodes. */
async function runningOn(): Promise<string[]> {
  const states = await Promise.all(NODES.map(async (n) => (await labExec(n, `virsh domstate ${VM}`)).stdout.trim()));
  return NODES.filter((_, i) => states[i] !== "shut off");
}

/** Waits until no migration job is left on either node (the background virsh migrate ended one way or the other). */
async function noJobs(): Promise<void> {
  await waitFor("the migration job to end on both nodes", async () => {
    const jobs = await Promise.all(NODES.map(async (n) => (await labExec(n, `virsh domjobinfo ${VM}`)).stdout));
    return jobs.every((j) => !/Job type:\s+Unbounded/.test(j)) ? true : undefined;
  }, 600_000, 2000);
}

/** pmc vm mv --cleanup (when needed), then the settled state and a clean cluster verify for this VM. */
async function cleanUpAndCheck(what: string): Promise<string> {
  const cleanup = await pmc(["vm", "mv", "--cleanup", VM], { config });
  console.log(`# ${what}: pmc vm mv --cleanup exit ${cleanup.exitCode}:\n${cleanup.stdout.replace(/^/gm, "#   ")}`);
  assert.equal(cleanup.exitCode, 0, cleanup.stderr + cleanup.stdout);
  const again = await pmc(["vm", "mv", "--cleanup", VM], { config });
  assert.match(again.stdout, /nothing to clean up/, "idempotent");
  const where = await runningOn();
  assert.equal(where.length, 1, `runs exactly once (on ${where.join(", ")})`);
  await waitFor("UpToDate/UpToDate after the resync", async () => {
    const ds = (await labExecOk(where[0]!, `drbdadm dstate ${VM}`)).trim();
    return ds === "UpToDate/UpToDate" ? true : undefined;
  }, 300_000, 2000);
  await assertSettled(VM, where[0]!);
  const { data } = await pmcJson<{ findings: Array<{ vm?: string; code: string; severity: string; message: string }> }>(["cluster", "verify"], { config });
  const mine = data.findings.filter((f) => f.vm === VM || f.message.includes(VM));
  assert.deepEqual(mine, [], "pmc cluster verify reports nothing about it");
  const c = (await readCounter(where[0]!, LV))!;
  try {
    await waitFor("the counter to rise", async () => (((await readCounter(where[0]!, LV)) ?? 0) > c ? true : undefined), 120_000, 2000);
  } catch (err) {
    // What the guest is doing, for the one who reads the failure: libvirt's and QEMU's view, and whether its CPU moves.
    for (let i = 0; i < 2; i++) {
      const r = await labExec(where[0]!, `virsh domstate --reason ${VM}; virsh qemu-monitor-command --hmp ${VM} 'info status'; virsh qemu-monitor-command --hmp ${VM} 'info registers' | grep -E 'RIP|HLT'`);
      console.log(`# the counter stayed at ${c} on ${where[0]}: ${r.stdout.replace(/\s*\n\s*/g, " | ")}`);
      await sleep(2000);
    }
    throw err;
  }
  return where[0]!;
}

/** Starts pmc vm mv in the background; `migrating` resolves when its stderr shows the migration running. */
function startMove(args: string[] = []) {
  const run = pmcChild(["vm", "mv", ...args, VM], { config });
  return { child: run.child, migrating: run.until(/live-migrate/), done: run.exit };
}

/** Until the source reports a running migration job (or the job is over already). */
async function jobStarted(source: string): Promise<void> {
  await waitFor("virsh migrate to start", async () => {
    const out = (await labExec(source, `virsh domjobinfo ${VM}`)).stdout;
    return /Job type:\s+Unbounded/.test(out) ? true : undefined;
  }, 60_000, 200);
}

describe("pmc vm mv, interrupted, on the lab", { timeout: 40 * 60_000 }, () => {
  let home = "pm-1";

  before(async () => {
    await ensureLabUp();
    await createGuest(VM);
  });

  after(async () => {
    await restoreLink("pm-2").catch(() => {});
    await removeGuest(VM);
    console.log(`# pmc-vm-mv-interrupted.full.test.ts took ${((Date.now() - started) / 1000).toFixed(0)} s`);
  });

  it("pmc SIGKILLed during virsh migrate", async () => {
    const move = startMove();
    await move.migrating;
    await jobStarted(home).catch(() => {});
    move.child.kill("SIGKILL");
    await move.done;
    await noJobs();
    console.log(`# after the kill: runs on ${(await runningOn()).join(", ")}`);
    home = await cleanUpAndCheck("pmc killed");
  });

  it("the target's QEMU killed mid-migration: pmc recovers by itself, the VM goes on where it ran", async () => {
    const target = NODES.find((n) => n !== home)!;
    const move = startMove();
    await move.migrating;
    await jobStarted(home);
    // libvirt keeps the incoming QEMU's pid in its run directory.
    await labExecOk(target, `kill -KILL "$(cat /run/libvirt/qemu/${VM}.pid)"`);
    const r = await move.done;
    console.log(`# pmc exit ${r.code}:\n${r.stdout.replace(/^/gm, "#   ")}`);
    assert.equal(r.code, 1, "the migration failed");
    assert.match(r.stdout, new RegExp(`${VM}: FAILED migrating ${home} -> ${target}`));
    assert.match(r.stdout, /recovered: clean up mv-break: it runs on/);
    await noJobs();
    home = await cleanUpAndCheck("target QEMU killed");
  });

  it("the link between the nodes cut mid-migration", async () => {
    const target = NODES.find((n) => n !== home)!;
    const move = startMove(["--timeout", "60"]);
    await move.migrating;
    await jobStarted(home);
    await cutLink(target);
    let r: { code: number | null; stdout: string; stderr: string };
    try {
      r = await move.done;
    } finally {
      await restoreLink(target);
    }
    console.log(`# pmc exit ${r.code} with ${target} cut off:\n${r.stdout.replace(/^/gm, "#   ")}`);
    assert.notEqual(r.code, 0);
    await noJobs();
    // DRBD needs a moment to reconnect (or to find the split brain) after the link is back.
    await sleep(15_000);
    home = await cleanUpAndCheck("link cut");
  });
});
