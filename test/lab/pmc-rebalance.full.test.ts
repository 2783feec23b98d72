// pmc cluster rebalance on the real cluster: three VMs running all on pm-1 (two paired with
// pm-2, one with pm-3), the largest of them the guest workload, two tiny ones that sit in their firmware
// (running is all a live migration needs; three booted guests on one emulated node load it so
// much that DRBD misses its 0.5 s ping mid-migration). Rebalance live-migrates some to their
// peers so that no node runs all of them, read from virsh and drbdadm on the nodes; the
// workload is among the moved and its counter never goes backwards and keeps rising; a second run moves nothing.
// Shares the lab with other tests: only `rb-` names, DRBD minors 400-449, ports 8400-8449.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ensureLabUp, labExec, waitForCounter } from "./lab.ts";
import { labConfigFor, pmc, pmcJson } from "./pmc.ts";
import { assertSettled, createGuest, lvOf, removeGuest, sampleCounter } from "./mv-guest.ts";

const config = labConfigFor("rebalance", { minors: [400, 449], ports: [8400, 8449] }, "domainType: qemu\n");
const GUESTS: Array<{ vm: string; peer: string }> = [
  { vm: "rb-a", peer: "pm-2" },
  { vm: "rb-b", peer: "pm-3" },
  { vm: "rb-c", peer: "pm-2" },
];
const WORKLOAD = "rb-c";
const started = Date.now();

interface RebalanceJson {
  scoreBefore: number;
  scoreAfter: number;
  outcomes: Array<{ vm: string; from: string; to: string; status: string; reason: string }>;
}

/** Where each guest runs, as the nodes' libvirt says. */
async function placement(): Promise<Record<string, string[]>> {
  const where: Record<string, string[]> = {};
  for (const { vm, peer } of GUESTS) {
    for (const node of ["pm-1", peer]) {
      const r = await labExec(node, `virsh domstate ${vm}`);
      if (r.stdout.trim() === "running") (where[vm] ??= []).push(node);
    }
  }
  return where;
}

describe("pmc cluster rebalance on the lab", { timeout: 30 * 60_000 }, () => {
  before(async () => {
    await ensureLabUp();
    await Promise.all(GUESTS.map(async ({ vm, peer }) => {
      if (vm === WORKLOAD) return createGuest(vm, config, ["pm-1", peer]);
      await removeGuest(vm, config);
      // 64 MiB beside the workload's 96: the largest move is the workload's, so it is the one rebalance makes first.
      const add = await pmc(["vm", "add", "-p", "pm-1", "-p", peer, "-s", "64M", "-m", "64M", vm], { config });
      assert.equal(add.exitCode, 0, add.stdout + add.stderr);
    }));
  });

  after(async () => {
    for (const { vm } of GUESTS) await removeGuest(vm, config);
    console.log(`# pmc-rebalance.full.test.ts took ${((Date.now() - started) / 1000).toFixed(0)} s`);
  });

  it("three VMs on pm-1: rebalance moves some to their peers so no node runs all of them, the workload's counter uninterrupted; a second run moves nothing", async () => {
    assert.deepEqual(Object.values(await placement()), [["pm-1"], ["pm-1"], ["pm-1"]], "all three start on pm-1");
    const dry = await pmcJson<RebalanceJson>(["cluster", "rebalance", "--dry-run"], { config });
    assert.equal(dry.code, 0, dry.stderr);
    assert.ok(dry.data.outcomes.length >= 1 && dry.data.outcomes.every((o) => o.status === "dry-run" && o.from === "pm-1"), JSON.stringify(dry.data.outcomes));
    assert.deepEqual(Object.values(await placement()), [["pm-1"], ["pm-1"], ["pm-1"]], "the dry run moved nothing");

    // Sampled on the standby's LV (protocol C keeps it current on both nodes).
    const peer = GUESTS.find((g) => g.vm === WORKLOAD)!.peer;
    const sampler = sampleCounter(peer, lvOf(WORKLOAD));
    const t0 = Date.now();
    const r = await pmcJson<RebalanceJson>(["cluster", "rebalance"], { config });
    const seconds = (Date.now() - t0) / 1000;
    const values = await sampler.stop();
    assert.equal(r.code, 0, `${r.stderr}\n${JSON.stringify(r.data, null, 1)}`);
    console.log(`# rebalance: ${r.data.outcomes.map((o) => `${o.vm} ${o.from} -> ${o.to} ${o.status}`).join(", ")}; `
      + `score ${r.data.scoreBefore.toFixed(3)} -> ${r.data.scoreAfter.toFixed(3)} in ${seconds.toFixed(1)} s`);
    assert.ok(r.data.outcomes.length >= 1 && r.data.outcomes.every((o) => o.status === "done"), JSON.stringify(r.data.outcomes));
    assert.ok(r.data.scoreAfter < r.data.scoreBefore);

    const where = await placement();
    for (const { vm, peer } of GUESTS) {
      assert.equal(where[vm]?.length, 1, `${vm} runs exactly once: ${where[vm]}`);
      const moved = r.data.outcomes.find((o) => o.vm === vm);
      assert.deepEqual(where[vm], [moved ? peer : "pm-1"], `${vm} runs where rebalance said`);
      await assertSettled(vm, where[vm]![0]!, ["pm-1", peer]);
    }
    const onPm1 = GUESTS.filter(({ vm }) => where[vm]![0] === "pm-1").length;
    assert.ok(onPm1 < GUESTS.length, "pm-1 no longer runs all of them");
    assert.deepEqual(where[WORKLOAD], [peer], `${WORKLOAD}, the largest, was live-migrated while its counter ran`);
    for (let i = 1; i < values.length; i++) assert.ok(values[i]! >= values[i - 1]!, `${WORKLOAD}: counter went backwards: ${values.slice(i - 1, i + 1)}`);
    const later = await waitForCounter(peer, lvOf(WORKLOAD), Math.max(0, ...values), 120_000);
    console.log(`# ${WORKLOAD} (${where[WORKLOAD]![0] === "pm-1" ? "not moved" : "moved"}): counter ${values[0]} .. ${values.at(-1)} while rebalance ran (${values.length} samples), ${later} later`);

    const again = await pmcJson<RebalanceJson>(["cluster", "rebalance"], { config });
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(again.data.outcomes, [], "balanced: a second run moves nothing");
    assert.deepEqual(await placement(), where);
  });
});
