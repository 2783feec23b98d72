// pmc pm add and pm rm on the real cluster. pmc starts from a pmc.yaml that lists only pm-1 and
// pm-2 (with a comment of the operator's) and a known_hosts without pm-3: a wrong fingerprint is
// refused and changes nothing; the right one (read on pm-3 itself) adds pm-3, keeping the comment,
// and pm ls then shows it. With a VM's copy on pm-3, pm rm is refused; once the VM is gone, pm rm
// takes pm-3 out of pmc.yaml, comment still kept.
// Shares the lab with other tests: only `pa-` names, DRBD minors 500-549, ports 8500-8549. pm rm
// edits pm-1's and pm-2's /root/.ssh files: they are saved on the nodes first and put back after.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { ensureLabUp, knownHostsPath, labExecOk } from "./lab.ts";
import { labConfigFor, pmc, pmcJson } from "./pmc.ts";

const VM = "pa-a";
const DRBD = { minors: [500, 549] as [number, number], ports: [8500, 8549] as [number, number] };
const EXTRA = "domainType: qemu\n";
const COMMENT = "# pm-3 joins with pmc pm add (this comment must survive)";

/** The whole lab, for cleaning up whatever an earlier run left. */
const fullConfig = labConfigFor("pm-add-full", DRBD, EXTRA);
/** known_hosts without pm-3's line, and pmc.yaml without pm-3, pointing at it. */
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pmc-pm-add-"));
process.once("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
const knownHosts = path.join(dir, "known_hosts");
const config = path.join(dir, "pmc.yaml");

/** Node files pm rm changes (known_hosts: ssh-keygen -R; authorized_keys: only for a key pm-3 alone has). */
const NODE_FILES = ["pm-1", "pm-2"].flatMap((node) => ["/root/.ssh/known_hosts", "/root/.ssh/authorized_keys"].map((file) => ({ node, file })));
const SAVED = ".pmc-pm-add-saved";

async function restoreNodeFiles(): Promise<void> {
  for (const { node, file } of NODE_FILES) await labExecOk(node, `if [ -e ${file}${SAVED} ]; then cat ${file}${SAVED} > ${file} && rm ${file}${SAVED}; fi`);
}

function configText(): string {
  return fs.readFileSync(config, "utf8");
}

function listedNodes(): string[] {
  return [...configText().matchAll(/^ {2}- name: (\S+)$/gm)].map((m) => m[1]!);
}

describe("pmc pm add and pm rm on the lab", { timeout: 30 * 60_000 }, () => {
  let fingerprint: string;

  before(async () => {
    await ensureLabUp();
    await restoreNodeFiles();
    await pmc(["vm", "rm", "-f", VM], { config: fullConfig });
    for (const { node, file } of NODE_FILES) await labExecOk(node, `cp -p ${file} ${file}${SAVED}`);
    fs.writeFileSync(knownHosts, fs.readFileSync(knownHostsPath, "utf8").split("\n").filter((l) => !l.startsWith("pm-3,")).join("\n"));
    const full = fs.readFileSync(fullConfig, "utf8");
    const without = full.replace(/^ {2}- name: pm-3\n {4}address: 10\.99\.0\.13\n/m, "").replace(knownHostsPath, knownHosts);
    assert.notEqual(without, full, "the lab's pmc.yaml lists pm-3 as expected");
    fs.writeFileSync(config, `${COMMENT}\n${without}`);
    // "256 SHA256:... root@pm-3 (ED25519)", read on the node itself.
    fingerprint = (await labExecOk("pm-3", "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub")).split(" ")[1]!;
    assert.match(fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  after(async () => {
    await pmc(["vm", "rm", "-f", VM], { config: fullConfig });
    await restoreNodeFiles();
  });

  it("refuses a wrong fingerprint and changes nothing", async () => {
    const yaml = configText();
    const known = fs.readFileSync(knownHosts, "utf8");
    const wrong = `SHA256:${"A".repeat(43)}`;
    const r = await pmc(["pm", "add", "pm-3", "--address", "10.99.0.13", "--fingerprint", wrong], { config });
    assert.equal(r.exitCode, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`shows the host key ssh-ed25519 ${fingerprint.replace(/[+/]/g, "\\$&")}, not ${wrong}; nothing was written \\[PMC_E_HOSTKEY_CHANGED\\]`));
    assert.equal(configText(), yaml);
    assert.equal(fs.readFileSync(knownHosts, "utf8"), known);
  });

  it("adds pm-3 with the fingerprint read on it: known_hosts gets its key, pmc.yaml lists it and keeps the comment", async () => {
    const before = configText();
    const r = await pmcJson<{ mode: string; fingerprint: string; knownHostsLine: string }>(
      ["pm", "add", "pm-3", "--address", "10.99.0.13", "--fingerprint", fingerprint], { config });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.data.mode, "added");
    assert.equal(r.data.fingerprint, fingerprint);
    assert.match(fs.readFileSync(knownHosts, "utf8"), /^pm-3,10\.99\.0\.13 ssh-ed25519 \S+$/m);
    const after = configText();
    assert.deepEqual(listedNodes(), ["pm-1", "pm-2", "pm-3"]);
    assert.ok(after.startsWith(`${COMMENT}\n`));
    // Every line of the file is still there, in order.
    assert.deepEqual(after.split("\n").filter((l) => before.split("\n").includes(l)), before.split("\n"));

    const ls = await pmcJson<Array<{ name: string; reachable: boolean; hostname?: string }>>(["pm", "ls"], { config });
    assert.equal(ls.code, 0, ls.stderr);
    assert.deepEqual(ls.data.map((n) => [n.name, n.reachable]), [["pm-1", true], ["pm-2", true], ["pm-3", true]]);
  });

  it("adding pm-3 again is refused", async () => {
    const r = await pmc(["pm", "add", "pm-3", "--address", "10.99.0.13", "--fingerprint", fingerprint], { config });
    assert.equal(r.exitCode, 2, r.stderr);
    assert.match(r.stderr, /node "pm-3" is already in .* \[PMC_E_USAGE\]/);
  });

  it("refuses to remove pm-3 while it holds a copy of a VM", async () => {
    const add = await pmc(["vm", "add", "-p", "pm-1", "-p", "pm-3", "-s", "64M", "-m", "64M", "--no-start", VM], { config });
    assert.equal(add.exitCode, 0, add.stderr);
    const yaml = configText();
    const r = await pmc(["pm", "rm", "pm-3", "-f"], { config });
    assert.equal(r.exitCode, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`pm-3 holds a copy of ${VM}; nothing was changed \\[PMC_E_STATE\\]`));
    assert.match(r.stderr, /pmc pm evacuate --secondaries pm-3/);
    assert.equal(configText(), yaml);
  });

  it("once the VM is gone, pm rm takes pm-3 out of pmc.yaml and pm-1, pm-2 forget its host key", async () => {
    const rmVm = await pmc(["vm", "rm", "-f", VM], { config });
    assert.equal(rmVm.exitCode, 0, rmVm.stderr);
    const dry = await pmc(["pm", "rm", "--dry-run", "pm-3"], { config });
    assert.equal(dry.exitCode, 0, dry.stderr);
    assert.match(dry.stdout, /dry run, nothing changed/);
    assert.deepEqual(listedNodes(), ["pm-1", "pm-2", "pm-3"]);

    const r = await pmc(["pm", "rm", "pm-3", "-f"], { config });
    assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
    assert.deepEqual(listedNodes(), ["pm-1", "pm-2"]);
    assert.ok(configText().startsWith(`${COMMENT}\n`));
    for (const node of ["pm-1", "pm-2"]) {
      const lookup = await labExecOk(node, "ssh-keygen -F pm-3 -f /root/.ssh/known_hosts || true");
      assert.equal(lookup.trim(), "", `${node} still knows pm-3`);
    }
  });
});
