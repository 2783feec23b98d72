// pmc's VM lifecycle on the real cluster: a VM made by hand exactly the way the old bash tool
// made it (LV, old-format .res with allow-two-primaries, forced Primary on the first node,
// domain defined on the second from the first's XML) is stopped, started on either node,
// rebooted, reached on its console and removed by pmc; what pmc refuses changes nothing.
// Shares the lab with other tests: only `life-` names, DRBD minors 200-299, ports 8000-8099.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  VOLUME_GROUP,
  createDrbdResource,
  drbdRoles,
  ensureLabUp,
  fullSetOnly,
  guestDomainXml,
  labExec,
  labExecOk,
  removeDrbdResource,
  run,
  waitFor,
  waitForCounter,
  writeNodeFile,
  type DrbdResourceSpec,
} from "./lab.ts";
import { labConfigFor, pmc, pmcJson } from "./pmc.ts";

const vm: DrbdResourceSpec = { name: "life-a", minor: 200, port: 8000, nodes: ["pm-1", "pm-2"] };
const ignored = "ignore-life-b";
const device = `/dev/drbd${vm.minor}`;
/** The LV under DRBD: readable on either node, whatever its role (the metadata is at its end). */
const disk = `/dev/${VOLUME_GROUP}/${vm.name}`;
const ALL_NODES = ["pm-1", "pm-2", "pm-3"];
/** The guest's serial console, written to this file on the node that runs it (the domain is the same on both). */
const consoleLog = `/var/log/libvirt/qemu/${vm.name}-console.log`;

const config = labConfigFor("life", { minors: [200, 299], ports: [8000, 8099] });

/** The part of `--json` output of an applied plan the tests look at. */
interface Applied {
  plan: { steps: Array<{ node: string; command: string }> };
}

/** pmc with the test's config; logs how long it took. */
async function pmcTimed(args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const t0 = Date.now();
  const r = await pmc(args, { config });
  console.log(`# pmc ${args.join(" ")}: exit ${r.exitCode} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return r;
}

async function domainState(node: string, name = vm.name): Promise<string> {
  const r = await labExec(node, `virsh domstate ${name}`);
  return r.exitCode === 0 ? r.stdout.trim() : "undefined";
}

async function states(): Promise<string[]> {
  return Promise.all(vm.nodes.map((n) => domainState(n)));
}

/** One entry per time the guest's init started on `node`: the counter it found on its disk. */
async function guestStarts(node: string): Promise<number[]> {
  const log = await labExecOk(node, `cat ${consoleLog} 2>/dev/null; true`);
  return [...log.matchAll(/PMC-GUEST start at (\d+)/g)].map((m) => Number(m[1]));
}

/** Waits until the guest's init has started on `node` more than `times` times; returns the starts. */
async function waitForStarts(node: string, times: number, timeoutMs: number): Promise<number[]> {
  return waitFor(`the guest's init to start on ${node} more than ${times} times`, async () => {
    const starts = await guestStarts(node);
    return starts.length > times && starts;
  }, timeoutMs, 5000);
}

/** Waits until libvirt on `node` reaches the guest's agent (the guest opens its channel once booted). */
async function waitForAgent(node: string): Promise<void> {
  await waitFor(`${vm.name}'s guest agent to answer on ${node}`, async () =>
    (await labExec(node, `virsh qemu-agent-command --timeout 10 ${vm.name} '{"execute":"guest-ping"}'`)).exitCode === 0 || undefined,
  420_000, 3000);
}

async function cleanup(): Promise<void> {
  await Promise.all(
    ALL_NODES.map((n) =>
      labExec(n, `for d in ${vm.name} ${ignored}; do virsh destroy $d; virsh undefine --nvram $d; done >/dev/null 2>&1; rm -f /root/${vm.name}.xml /root/${ignored}.xml ${consoleLog}; true`),
    ),
  );
  await removeDrbdResource(vm);
}

describe("pmc vm stop, start, reboot, console, rm on the lab", { timeout: 45 * 60_000 }, () => {
  before(async () => {
    await ensureLabUp();
    await cleanup();
    // The old tool: LV + resource with allow-two-primaries on both nodes, first node forced Primary.
    await createDrbdResource(vm, 256);
    // 96 MiB: the guest workload's kernel does not boot in 64.
    await writeNodeFile("pm-1", `/root/${vm.name}.xml`, guestDomainXml({ name: vm.name, disk: device, memoryMiB: 96, consoleFile: consoleLog, agent: true }));
    await labExecOk("pm-1", `virsh define /root/${vm.name}.xml && virsh start ${vm.name}`);
    // ... and the peer defined from the first node's XML, so both have the same UUID.
    await writeNodeFile("pm-2", `/root/${vm.name}.xml`, await labExecOk("pm-1", `virsh dumpxml --inactive --security-info ${vm.name}`));
    await labExecOk("pm-2", `virsh define /root/${vm.name}.xml`);
  });

  after(cleanup);

  it("dry runs print the plan and change nothing", async () => {
    const uuid = (await labExecOk("pm-1", `virsh domuuid ${vm.name}`)).trim();
    const rm = await pmcTimed(["vm", "rm", "--dry-run", vm.name]);
    assert.equal(rm.exitCode, 0, rm.stderr);
    assert.match(rm.stdout, /^dry run, nothing changed: remove life-a from pm-1, pm-2 \(9 steps\)/);
    assert.ok(rm.stdout.includes(`[pm-1] power off life-a on pm-1, where it runs\n       $ virsh destroy ${uuid}`));
    assert.ok(rm.stdout.includes(`$ lvremove -y ${disk}`));
    assert.ok(rm.stdout.includes(`$ rm -f -- /etc/drbd.d/${vm.name}.res`));
    for (const args of [["stop", "--force"], ["reboot"]]) {
      const r = await pmcTimed(["vm", ...args, "--dry-run", vm.name]);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.match(r.stdout, /^dry run, nothing changed/);
    }
    assert.deepEqual(await states(), ["running", "shut off"]);
    assert.deepEqual(await drbdRoles("pm-1", vm.name), ["Primary", "Secondary"]);
    await labExecOk("pm-2", `lvs ${VOLUME_GROUP}/${vm.name} && test -f /etc/drbd.d/${vm.name}.res`);
  });

  it("rm without -f and without a terminal refuses and changes nothing", async () => {
    const r = await pmcTimed(["vm", "rm", vm.name]);
    assert.equal(r.exitCode, 1);
    assert.match(r.stderr, /no terminal to confirm on \[PMC_E_CONFIRM\]/);
    assert.match(r.stderr, /pass -f/);
    assert.deepEqual(await states(), ["running", "shut off"]);
  });

  it("stop --force powers it off and demotes DRBD on both sides", async () => {
    const r = await pmcTimed(["vm", "stop", "--force", vm.name]);
    assert.equal(r.exitCode, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /done: power off life-a \(2 steps\)/);
    assert.deepEqual(await states(), ["shut off", "shut off"]);
    assert.deepEqual(await drbdRoles("pm-1", vm.name), ["Secondary", "Secondary"]);
  });

  it("start with both sides Secondary picks the preferred node and promotes it first", async () => {
    const { code, data } = await pmcJson<Applied>(["vm", "start", vm.name], { config });
    assert.equal(code, 0, JSON.stringify(data));
    assert.deepEqual(data.plan.steps.map((s) => `${s.node} ${s.command.split(" ").slice(0, 2).join(" ")}`), ["pm-1 drbdadm primary", "pm-1 virsh start"]);
    assert.deepEqual(await states(), ["running", "shut off"]);
    assert.deepEqual(await drbdRoles("pm-1", vm.name), ["Primary", "Secondary"]);
  });

  it("stop right after a start waits up to --timeout and fails saying so: the booting guest has neither ACPI nor its agent yet", async () => {
    const r = await pmcTimed(["vm", "stop", "--timeout", "10", vm.name]);
    assert.equal(r.exitCode, 1, r.stdout);
    assert.match(r.stdout, /life-a did not shut down within 10 s; "pmc vm stop --force life-a" powers it off \(still running\)/);
    assert.match(r.stdout, /nothing had changed yet/);
    assert.deepEqual(await states(), ["running", "shut off"]);
    assert.deepEqual(await drbdRoles("pm-1", vm.name), ["Primary", "Secondary"]);
  });

  it("start refuses a VM that already runs (never two copies)", async () => {
    const r = await pmcTimed(["vm", "start", "-p", "pm-2", vm.name]);
    assert.equal(r.exitCode, 1);
    assert.match(r.stderr, /life-a is already running on pm-1 \[PMC_E_STATE\]/);
    assert.deepEqual(await states(), ["running", "shut off"]);
    assert.deepEqual(await drbdRoles("pm-2", vm.name), ["Secondary", "Primary"]);
  });

  it("destroy -f powers off and demotes; start -p pm-2 then runs it on the peer, on its DRBD device", async () => {
    const d = await pmcTimed(["vm", "destroy", "-f", vm.name]);
    assert.equal(d.exitCode, 0, d.stderr + d.stdout);
    assert.deepEqual(await drbdRoles("pm-1", vm.name), ["Secondary", "Secondary"]);
    const s = await pmcTimed(["vm", "start", "-p", "pm-2", vm.name]);
    assert.equal(s.exitCode, 0, s.stderr + s.stdout);
    assert.match(s.stdout, /done: start life-a on pm-2 \(2 steps\)/);
    assert.deepEqual(await states(), ["shut off", "running"]);
    assert.deepEqual(await drbdRoles("pm-2", vm.name), ["Primary", "Secondary"]);
    // The guest's QEMU holds the replicated device open (booting it takes minutes under emulation).
    const held = await labExecOk("pm-2", `ls -l /proc/$(cat /run/libvirt/qemu/${vm.name}.pid)/fd | grep -c ' ${device}$'`);
    assert.ok(Number(held.trim()) >= 1);
  });

  it("reboot asks the guest through its agent and the guest restarts itself: its init starts again on pm-2, from its disk's counter, DRBD roles unchanged", async () => {
    // A restart is told from the first boot only once that boot is done (minutes under emulation).
    const [firstStart] = await waitForStarts("pm-2", 0, 600_000);
    const before = await waitForCounter("pm-2", device, firstStart);
    await waitForAgent("pm-2");
    const asked = await pmcTimed(["vm", "reboot", vm.name]);
    assert.equal(asked.exitCode, 0, asked.stderr + asked.stdout);
    assert.match(asked.stdout, /done: ask life-a to reboot on pm-2 \(1 steps\)/);
    assert.match(asked.stdout, /the guest decides whether and when it reboots; .* pmc vm reboot --hard life-a resets it/);
    // pmc's "done" is not the proof: only the guest's own init printing its start again shows a restart.
    // (QEMU's process is no proof either way: libvirt resets a domain in the same process.)
    const starts = await waitForStarts("pm-2", 1, 420_000);
    assert.equal(starts.length, 2, `one restart: ${starts.join(", ")}`);
    assert.ok(starts[1]! >= before, `after the restart it went on from its disk's counter (${before} before), not from ${starts[1]}`);
    assert.match(await labExecOk("pm-2", `cat ${consoleLog}`), /PMC-GUEST reboot by the agent/);
    assert.deepEqual(await states(), ["shut off", "running"]);
    assert.deepEqual(await drbdRoles("pm-2", vm.name), ["Primary", "Secondary"]);
  });

  it("reboot --hard resets the guest where it runs, as pm-2 sees it: its init starts again, on the same disk, DRBD roles unchanged", { skip: fullSetOnly }, async () => {
    const startsBefore = await guestStarts("pm-2");
    const before = await waitForCounter("pm-2", device, startsBefore.at(-1));
    const r = await pmcTimed(["vm", "reboot", "--hard", "-f", vm.name]);
    assert.equal(r.exitCode, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /done: reset life-a on pm-2 \(1 steps\)/);
    const starts = await waitForStarts("pm-2", startsBefore.length, 420_000);
    assert.equal(starts.length, startsBefore.length + 1, `one restart: ${starts.join(", ")}`);
    assert.ok(starts.at(-1)! >= before, `after the reset it went on from its disk's counter (${before} before), not from ${starts.at(-1)}`);
    assert.deepEqual(await states(), ["shut off", "running"]);
    assert.deepEqual(await drbdRoles("pm-2", vm.name), ["Primary", "Secondary"]);
  });

  it("stop asks the guest through its agent, the guest powers itself off, and DRBD is demoted on both nodes; start -p pm-2 brings it back", async () => {
    const starts = await guestStarts("pm-2");
    await waitForCounter("pm-2", device, starts.at(-1));
    await waitForAgent("pm-2");
    const r = await pmcTimed(["vm", "stop", "--timeout", "120", vm.name]);
    assert.equal(r.exitCode, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /done: shut down life-a \(2 steps\)/);
    // The guest's own word and libvirt's reason: a shutdown from inside, not a power cut.
    assert.match(await labExecOk("pm-2", `cat ${consoleLog}`), /PMC-GUEST power off by the agent/);
    assert.equal((await labExecOk("pm-2", `virsh domstate --reason ${vm.name}`)).trim(), "shut off (shutdown)");
    assert.deepEqual(await states(), ["shut off", "shut off"]);
    assert.deepEqual(await drbdRoles("pm-1", vm.name), ["Secondary", "Secondary"]);
    assert.deepEqual(await drbdRoles("pm-2", vm.name), ["Secondary", "Secondary"]);
    const s = await pmcTimed(["vm", "start", "-p", "pm-2", vm.name]);
    assert.equal(s.exitCode, 0, s.stderr + s.stdout);
    assert.deepEqual(await states(), ["shut off", "running"]);
  });

  it("console without a terminal prints an ssh command that reaches the node the way pmc does", async () => {
    const r = await pmcTimed(["vm", "console", vm.name]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /^serial console of life-a on pm-2 \(leave it with Ctrl\+\]\):\n {2}ssh -t .* 10\.99\.0\.12 'virsh console [0-9a-f-]{36}'\n/);
    assert.match(r.stdout, /no graphical console: life-a has no VNC display/);
    const { data } = await pmcJson<{ argv: string[] }>(["vm", "console", vm.name], { config });
    // The same connection, with a command that needs no terminal in place of the console.
    const probe = [...data.argv.slice(0, -1).filter((a) => a !== "-t"), "-o", "BatchMode=yes", `virsh domstate ${vm.name}`];
    const reached = await run(probe);
    assert.equal(reached.exitCode, 0, reached.stderr);
    assert.equal(reached.stdout.trim(), "running");
  });

  it("a VM with the ignore prefix is listed but refused by every mutating command", async () => {
    await writeNodeFile("pm-3", `/root/${ignored}.xml`, guestDomainXml({ name: ignored, disk: "/dev/null" }));
    await labExecOk("pm-3", `virsh define /root/${ignored}.xml`);
    const { data } = await pmcJson<Array<{ name: string; flags: string[] }>>(["vm", "ls", ignored], { config });
    assert.deepEqual(data[0]!.flags, ["ignored"]);
    for (const args of [["start"], ["stop"], ["destroy", "-f"], ["reboot"], ["rm", "-f"]]) {
      const r = await pmcTimed(["vm", ...args, ignored]);
      assert.equal(r.exitCode, 1, args.join(" "));
      assert.match(r.stderr, /ignore-life-b starts with the ignore prefix "ignore"; pmc does not change it \[PMC_E_VM_IGNORED\]/);
    }
    assert.equal(await domainState("pm-3", ignored), "shut off");
  });

  it("rm -f removes the running VM: no domain, LV, resource file, DRBD device or resource left on any node", async () => {
    const r = await pmcTimed(["vm", "rm", "-f", vm.name]);
    assert.equal(r.exitCode, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /note: life-a runs on pm-2: it is powered off first, without a shutdown/);
    assert.match(r.stdout, /done: remove life-a from pm-1, pm-2 \(9 steps\)/);
    for (const node of ALL_NODES) {
      const left = await labExecOk(
        node,
        `virsh dominfo ${vm.name} >/dev/null 2>&1 && echo domain; lvs ${VOLUME_GROUP}/${vm.name} >/dev/null 2>&1 && echo lv; ` +
          `test -e /etc/drbd.d/${vm.name}.res && echo res-file; test -e ${device} && echo device; ` +
          `grep -q '^ *${vm.minor}:' /proc/drbd && echo proc-drbd; drbdsetup events2 --now | grep -q 'name:${vm.name} ' && echo drbd-resource; true`,
      );
      assert.equal(left.trim(), "", `${node} still has: ${left.trim()}`);
    }
    const again = await pmcTimed(["vm", "rm", "-f", vm.name]);
    assert.equal(again.exitCode, 1);
    assert.match(again.stderr, /no VM named "life-a" on any node \[PMC_E_VM_UNKNOWN\]/);
  });
});
