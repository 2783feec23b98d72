// pmc pm evacuate on the real cluster: a VM made by pmc vm add runs the guest workload on pm-1
// with its standby copy on pm-2; `pmc pm evacuate pm-1 --secondaries --to pm-3` migrates it to
// pm-2 and moves pm-1's copy to pm-3. Read from the nodes themselves afterwards: nothing of it on
// pm-1 (no domain, no DRBD resource, no LV, no resource file), it runs on pm-2, Primary there and
// UpToDate/UpToDate with pm-3 (the kernel's peer address is pm-3's), and the counter, sampled from
// pm-2's LV all along, never went backwards and kept rising.
// Shares the lab with other tests: only `ev-` names, DRBD minors 650-699, ports 9650-9699.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { VOLUME_GROUP, drbdConnectionState, ensureLabUp, labExec, labExecOk, labNode, readCounter, waitForCounter } from "./lab.ts";
import { labConfigFor, pmc, pmcJson } from "./pmc.ts";
import { assertSettled, createGuest, lvOf, removeGuest, sampleCounter } from "./mv-guest.ts";

const VM = "ev-work";
const LV = lvOf(VM);
const started = Date.now();

const config = labConfigFor("evacuate", { minors: [650, 699], ports: [9650, 9699] });

interface EvacuateJson {
  node: string;
  checksMs: number;
  notes: string[];
  outcomes: Array<{
    vm: string;
    action: string;
    from: string;
    to: string;
    status: string;
    migration?: { timings?: { roleChangesMs: number; migrateMs: number; totalMs: number } };
    result?: { done: Array<{ step: { command: string }; result?: { durationMs: number } }> };
  }>;
}

/** What pm-1 itself holds of the VM: its domain, its DRBD resource in the kernel, its LV, its resource file. */
async function onPm1(): Promise<{ domains: string; drbd: string; lvs: string; file: string }> {
  const [domains, drbd, lvs, file] = await Promise.all([
    labExecOk("pm-1", "virsh list --all --name"),
    labExecOk("pm-1", "drbdsetup status; cat /proc/drbd"),
    labExecOk("pm-1", `lvs --noheadings -o lv_name ${VOLUME_GROUP}`),
    labExec("pm-1", `ls /etc/drbd.d/${VM}.res`),
  ]);
  return { domains, drbd, lvs, file: file.exitCode === 0 ? file.stdout.trim() : "" };
}

describe("pmc pm evacuate on the lab", { timeout: 30 * 60_000 }, () => {
  before(async () => {
    await ensureLabUp();
    await createGuest(VM, config);
    // Evacuating pm-1 moves whatever pm-1 holds: a VM another test left behind would be moved (or block it) too.
    const held = await labExecOk("pm-1", "virsh list --all --name; ls /etc/drbd.d/ | sed -n 's/\\.res$//p'");
    const others = [...new Set(held.split("\n").map((l) => l.trim()).filter((l) => l && l !== VM))];
    assert.deepEqual(others, [], `pm-1 holds other VMs (left by another test?): ${others.join(", ")}`);
  });

  after(async () => {
    await removeGuest(VM, config);
    console.log(`# pmc-evacuate.full.test.ts took ${((Date.now() - started) / 1000).toFixed(0)} s`);
  });

  it("--dry-run prints the whole plan and changes nothing", async () => {
    const r = await pmc(["pm", "evacuate", "--dry-run", "pm-1", "--secondaries", "--to", "pm-3"], { config });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /dry run, nothing changed: evacuate pm-1: 1 migration, 1 standby copy moved/);
    assert.match(r.stdout, /migrate ev-work from pm-1 to pm-2/);
    assert.match(r.stdout, /move ev-work's standby copy from pm-1 to pm-3, resynced from pm-2/);
    assert.match(r.stdout, /\[pm-1\] remove the old copy \(LV \/dev\/vg-pmc\/ev-work\) on pm-1/);
    await assertSettled(VM, "pm-1");
    assert.notEqual((await labExec("pm-3", `virsh domstate ${VM}`)).exitCode, 0, "nothing defined on pm-3");
  });

  it("--to without --secondaries is refused before anything is asked", async () => {
    const r = await pmc(["pm", "evacuate", "pm-1", "--to", "pm-3"], { config });
    assert.equal(r.exitCode, 2);
    assert.match(r.stderr, /only --secondaries moves them \[PMC_E_USAGE\]/);
  });

  it("evacuates pm-1 with --secondaries --to pm-3: the VM runs on pm-2 mirrored with pm-3, nothing of it left on pm-1, the counter kept rising", async () => {
    const before = (await readCounter("pm-2", LV))!;
    const sampler = sampleCounter("pm-2", LV);
    const t0 = Date.now();
    const { code, data, stderr } = await pmcJson<EvacuateJson>(["pm", "evacuate", "pm-1", "--secondaries", "--to", "pm-3"], { config, timeoutMs: 25 * 60_000 });
    const wall = Date.now() - t0;
    const values = await sampler.stop();
    assert.equal(code, 0, `${stderr}\n${JSON.stringify(data, null, 2)}`);
    assert.deepEqual(data.outcomes.map((o) => `${o.action} ${o.vm} ${o.from} -> ${o.to}: ${o.status}`), [
      "migrate ev-work pm-1 -> pm-2: done",
      "move copy ev-work pm-1 -> pm-3: done",
    ]);
    const t = data.outcomes[0]!.migration!.timings!;
    const resync = data.outcomes[1]!.result!.done.find((d) => d.step.command.startsWith("stalled=0"))!.result!.durationMs;
    console.log(`# pmc ran ${(wall / 1000).toFixed(1)} s: reading and checking ${(data.checksMs / 1000).toFixed(1)} s, `
      + `migration ${(t.totalMs / 1000).toFixed(1)} s (virsh migrate ${(t.migrateMs / 1000).toFixed(1)} s), `
      + `resync of the 256 MiB copy to pm-3 ${(resync / 1000).toFixed(1)} s (${((resync / 1000) * 4).toFixed(0)} s per GiB)`);

    for (let i = 1; i < values.length; i++) assert.ok(values[i]! >= values[i - 1]!, `counter went backwards: ${values.slice(i - 1, i + 1)}`);
    assert.ok(values.every((v) => v >= before), "never below the value before the evacuation");

    const pm1 = await onPm1();
    assert.doesNotMatch(pm1.domains, new RegExp(`^${VM}$`, "m"), "no domain of it on pm-1, running or defined");
    assert.doesNotMatch(pm1.drbd, new RegExp(VM), "no DRBD resource of it on pm-1 (so no Primary)");
    assert.doesNotMatch(pm1.lvs, new RegExp(`^\\s*${VM}\\s*$`, "m"), "no LV of it on pm-1");
    assert.equal(pm1.file, "", "no resource file of it on pm-1");

    await assertSettled(VM, "pm-2", ["pm-2", "pm-3"]);
    for (const node of ["pm-2", "pm-3"]) assert.equal(await drbdConnectionState(node, VM), "Connected", node);
    const pm3 = labNode("pm-3").address;
    assert.match(await labExecOk("pm-2", `drbdsetup show ${VM}`), new RegExp(`_remote_host \\{\\s+address\\s+ipv4 ${pm3.replaceAll(".", "\\.")}:`), "pm-2's peer in the kernel is pm-3");
    assert.match(await labExecOk("pm-3", `lvs --noheadings -o lv_name ${VOLUME_GROUP}`), new RegExp(`^\\s*${VM}\\s*$`, "m"), "the copy's LV is on pm-3");

    const after = await waitForCounter("pm-2", LV, Math.max(before, ...values), 120_000);
    console.log(`# counter ${before} before, ${values.at(-1)} when pmc returned, ${after} later (${values.length} samples)`);
  });

  it("a second run has nothing to evacuate", async () => {
    const r = await pmc(["pm", "evacuate", "pm-1", "--secondaries", "--to", "pm-3"], { config });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /pm-1: nothing to evacuate/);
  });
});
