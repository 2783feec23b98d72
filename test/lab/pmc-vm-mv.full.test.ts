// pmc vm mv on the real cluster: a VM made by pmc vm add runs the guest workload (a counter
// written to its disk about twice a second) and is live-migrated pm-1 -> pm-2 -> pm-1. The
// counter, sampled from the LV under DRBD all along, never goes backwards and keeps rising;
// afterwards one Primary, allow-two-primaries off in the kernel (drbdsetup show), one UUID.
// Shares the lab with other tests: only `mv-` names, DRBD minors 700-749, ports 9700-9749.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { drbdRoles, ensureLabUp, labExecOk, readCounter, waitForCounter } from "./lab.ts";
import { pmc, pmcJson } from "./pmc.ts";
import { assertSettled, config, createGuest, lvOf, removeGuest, sampleCounter, type MoveJson } from "./mv-guest.ts";

const VM = "mv-work";
const LV = lvOf(VM);
const started = Date.now();

async function migrate(from: string, to: string): Promise<void> {
  const before = (await readCounter("pm-2", LV))!;
  const sampler = sampleCounter("pm-2", LV);
  const t0 = Date.now();
  const { code, data, stderr } = await pmcJson<MoveJson>(["vm", "mv", VM], { config });
  const wall = Date.now() - t0;
  const values = await sampler.stop();
  assert.equal(code, 0, `${stderr}\n${JSON.stringify(data, null, 2)}`);
  const o = data.outcomes[0]!;
  assert.deepEqual([o.status, o.source, o.target], ["migrated", from, to]);
  const t = o.timings!;
  // Progress is polled every second and shown every 3 s: a short migration may end before the first report.
  if (t.migrateMs > 20_000) assert.match(stderr, /% of memory sent, .* remaining/, "progress shown");
  console.log(`# ${from} -> ${to}: pmc ran ${(wall / 1000).toFixed(1)} s: reading and checking the cluster ${(data.checksMs / 1000).toFixed(1)} s, `
    + `role changes and checks on the nodes ${(t.roleChangesMs / 1000).toFixed(1)} s, virsh migrate ${(t.migrateMs / 1000).toFixed(1)} s`);
  for (let i = 1; i < values.length; i++) assert.ok(values[i]! >= values[i - 1]!, `counter went backwards: ${values.slice(i - 1, i + 1)}`);
  assert.ok(values.every((v) => v >= before), "never below the value before the migration");
  await assertSettled(VM, to);
  const after = await waitForCounter("pm-2", LV, Math.max(before, ...values), 120_000);
  console.log(`# counter ${before} before, ${values.at(-1)} when pmc returned, ${after} later (${values.length} samples)`);
}

describe("pmc vm mv on the lab", { timeout: 20 * 60_000 }, () => {
  before(async () => {
    await ensureLabUp();
    await createGuest(VM);
  });

  after(async () => {
    await removeGuest(VM);
    console.log(`# pmc-vm-mv.full.test.ts took ${((Date.now() - started) / 1000).toFixed(0)} s`);
  });

  it("--dry-run checks and prints the plan, and changes nothing", async () => {
    const r = await pmc(["vm", "mv", "--dry-run", VM], { config });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /dry run, nothing changed: migrate mv-work from pm-1 to pm-2/);
    assert.match(r.stdout, /\$ drbdadm net-options --allow-two-primaries=yes mv-work/);
    assert.match(r.stdout, /virsh migrate --live --persistent --verbose \S+ qemu\+ssh:\/\/pm-2\/system/);
    await assertSettled(VM, "pm-1");
  });

  it("migrates pm-1 -> pm-2 -> pm-1 while the counter keeps rising", async () => {
    await migrate("pm-1", "pm-2");
    await migrate("pm-2", "pm-1");
  });

  it("--cleanup on a clean VM plans nothing", async () => {
    const r = await pmc(["vm", "mv", "--cleanup", VM], { config });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /nothing to clean up: mv-work runs on pm-1, the only Primary/);
    await assertSettled(VM, "pm-1");
  });

  it("refuses a migration while the peer is not UpToDate, before anything changes", async () => {
    await labExecOk("pm-2", `drbdadm disconnect ${VM}`);
    try {
      const r = await pmc(["vm", "mv", VM], { config });
      assert.equal(r.exitCode, 1);
      assert.match(r.stderr, /mv-work cannot migrate: mv-work on pm-1 is \w+ with disks UpToDate\/\w+; a migration needs Connected and UpToDate\/UpToDate on both nodes; nothing was changed \[PMC_E_STATE\]/);
      assert.deepEqual((await drbdRoles("pm-2", VM))[0], "Secondary");
      assert.doesNotMatch(await labExecOk("pm-1", `drbdsetup show ${VM}`), /allow-two-primaries\s+yes/);
    } finally {
      await labExecOk("pm-2", `drbdadm connect ${VM}`);
    }
  });
});
