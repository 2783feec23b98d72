/**
 * The guest the pmc vm mv lab tests share: a VM made by pmc vm add (mv- names, DRBD minors
 * 700-749, ports 9700-9749) running the lab's guest workload, and what a settled VM looks like
 * on the nodes themselves. Other tests pass their own pmc.yaml variant (their own minors and
 * ports) and pair.
 */
import assert from "node:assert/strict";
import {
  GUEST_IMAGE,
  VOLUME_GROUP,
  drbdDiskStates,
  drbdRoles,
  labExec,
  labExecOk,
  readCounter,
  sleep,
  waitForCounter,
} from "./lab.ts";
import { labConfigFor, pmc } from "./pmc.ts";

export const NODES = ["pm-1", "pm-2"];
const ALL_NODES = ["pm-1", "pm-2", "pm-3"];

export const config = labConfigFor("mv", { minors: [700, 749], ports: [9700, 9749] });

/** The LV under DRBD: readable on either node whatever its role; protocol C keeps it current on both. */
export const lvOf = (vm: string) => `/dev/${VOLUME_GROUP}/${vm}`;

export interface MoveJson {
  kind: "move";
  checksMs: number;
  outcomes: Array<{ vm: string; source: string; target: string; status: string; error?: string; timings?: { roleChangesMs: number; migrateMs: number; totalMs: number } }>;
}

export async function removeGuest(vm: string, pmcConfig = config): Promise<void> {
  const r = await pmc(["vm", "rm", "-f", vm], { config: pmcConfig });
  if (r.exitCode !== 0 && !/PMC_E_VM_UNKNOWN/.test(r.stderr)) {
    // pmc could not remove it (a broken earlier run): by hand, on every node.
    await Promise.all(ALL_NODES.map((n) => labExec(n, `virsh destroy ${vm}; virsh undefine --nvram ${vm}; drbdadm down ${vm}; lvremove -y ${lvOf(vm)}; rm -f /etc/drbd.d/${vm}.res; true`)));
  }
}

/** pmc vm add on the pair (default pm-1 and pm-2) from the guest workload's disk image, started on the first, first counter seen. */
export async function createGuest(vm: string, pmcConfig = config, pair = NODES): Promise<void> {
  const [home, peer] = pair as [string, string];
  await removeGuest(vm, pmcConfig);
  const add = await pmc(["vm", "add", "-p", home, "-p", peer, "-s", "256M", "-m", "96M", "--image", GUEST_IMAGE, "--no-start", vm], { config: pmcConfig });
  assert.equal(add.exitCode, 0, add.stderr + add.stdout);
  const start = await pmc(["vm", "start", "-p", home, vm], { config: pmcConfig });
  assert.equal(start.exitCode, 0, start.stderr + start.stdout);
  const t0 = Date.now();
  const first = await waitForCounter(peer, lvOf(vm), 0, 600_000);
  console.log(`# ${vm}: the guest wrote its first counter (${first}) ${((Date.now() - t0) / 1000).toFixed(0)} s after start`);
}

/** Runs on `runsOn` only, exactly one Primary, UpToDate/UpToDate, two primaries off in the kernel, one UUID. */
export async function assertSettled(vm: string, runsOn: string, pair = NODES): Promise<void> {
  const other = pair.find((n) => n !== runsOn)!;
  assert.equal((await labExecOk(runsOn, `virsh domstate ${vm}`)).trim(), "running", `runs on ${runsOn}`);
  assert.equal((await labExecOk(other, `virsh domstate ${vm}`)).trim(), "shut off", `not on ${other}`);
  assert.deepEqual(await drbdRoles(runsOn, vm), ["Primary", "Secondary"], "exactly one Primary");
  assert.deepEqual(await drbdRoles(other, vm), ["Secondary", "Primary"]);
  for (const node of pair) {
    assert.deepEqual(await drbdDiskStates(node, vm), ["UpToDate", "UpToDate"], node);
    assert.doesNotMatch(await labExecOk(node, `drbdsetup show ${vm}`), /allow-two-primaries\s+yes/, `two primaries off on ${node}`);
  }
  const uuids = await Promise.all(pair.map(async (n) => (await labExecOk(n, `virsh domuuid ${vm}`)).trim()));
  assert.equal(uuids[0], uuids[1], "one UUID on both nodes");
}

/** Reads the counter from `device` on `node` about once a second until stopped; every value, in order. */
export function sampleCounter(node: string, device: string): { stop: () => Promise<number[]> } {
  const values: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const c = await readCounter(node, device).catch(() => undefined);
      if (c !== undefined) values.push(c);
      await sleep(1000);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return values;
    },
  };
}
