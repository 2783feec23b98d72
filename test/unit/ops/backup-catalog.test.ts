// The backup catalog: names (pmc's and the old tool's), which full image an increment needs,
// which backup --at means, and what prune may delete. The listing is real output of
// listingCommand on a lab node (test/fixtures/real/backup-listing.txt).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import {
  chainOf, isoOfStamp, listingCommand, newestFull, parseAt, parseListing, planPrune, selectBackup, sha256Command, stampOf, type BackupEntry,
} from '../../../src/ops/backup/catalog.js';
import { buildCluster } from '../../../src/model/cluster.js';
import { planCopy } from '../../../src/ops/backup/copy.js';
import { prunePlan } from '../../../src/ops/backup/prune.js';
import { PmcError } from '../../../src/util/errors.js';
import { quote } from '../../../src/util/shell.js';
import { CONFIG, probes } from '../model/factory.js';

const DIR = '/pmc-vm-backup';
const listing = readFileSync(new URL('../../fixtures/real/backup-listing.txt', import.meta.url), 'utf8');

/** An entry as the listing gives it, for rules that need many of them. */
function entry(vm: string, node: string, stamp: string, kind: 'full' | 'incremental', base?: string): BackupEntry {
  return {
    vm, node, stamp, kind, compression: undefined, path: `${DIR}/${vm}/${stamp}.${kind === 'full' ? 'base' : 'xdelta3'}`, bytes: 1,
    manifest: undefined, manifestProblem: undefined, base,
  };
}

describe('backup listing', () => {
  const { entries, problems } = parseListing('pm-2', DIR, listing);

  test('lists pmc\'s backups with their manifests and the old tool\'s without, oldest first', () => {
    assert.deepEqual(problems, []);
    const rows = entries.map((e) => `${e.vm} ${e.stamp} ${e.kind} ${e.manifest ? 'manifest' : 'none'} base=${e.base ?? '-'}`);
    assert.ok(rows.length >= 4, rows.join('\n'));
    const pmcFull = entries.find((e) => e.manifest?.type === 'full')!;
    assert.equal(pmcFull.path, `${DIR}/${pmcFull.vm}/${pmcFull.stamp}.base`);
    assert.equal(pmcFull.bytes, pmcFull.manifest!.file.bytes);
    const pmcIncrement = entries.find((e) => e.manifest?.type === 'incremental')!;
    assert.equal(pmcIncrement.base, pmcIncrement.manifest!.base);
    const old = entries.filter((e) => !e.manifest);
    assert.ok(old.some((e) => e.kind === 'full') && old.some((e) => e.kind === 'incremental'), rows.join('\n'));
    // The old tool's increment needs the newest .base older than it.
    const oldIncrement = old.find((e) => e.kind === 'incremental')!;
    const olderFulls = entries.filter((e) => e.vm === oldIncrement.vm && e.kind === 'full' && e.stamp < oldIncrement.stamp);
    assert.equal(oldIncrement.base, olderFulls.at(-1)!.stamp);
  });

  test('ignores files that are no backups and directories that are no VM names; keeps manifests honest', () => {
    const text = [
      'F\tweb-1/2026-12-02-08-00-00.base\t1048576',
      'F\tweb-1/2026-12-02-08-00-00.base.tmp\t5',
      'F\tWeird Dir/2026-12-02-08-00-00.base\t7',
      'F\tweb-1/notes.txt\t3',
      'M\tweb-1/2026-12-02-08-00-00.json\t{"format":"pmc-backup/1","vm":"db"}',
      'F\tweb-1/2026-12-02-09-00-00.xdelta3\t100',
      'M\tweb-1/2026-12-02-09-00-00.json\tnot json',
    ].join('\n');
    const { entries: parsed } = parseListing('pm-1', DIR, text);
    assert.deepEqual(parsed.map((e) => [e.stamp, e.kind, e.base]), [
      ['2026-12-02-08-00-00', 'full', undefined],
      ['2026-12-02-09-00-00', 'incremental', '2026-12-02-08-00-00'],
    ]);
    assert.match(parsed[0]!.manifestProblem!, /not pmc's/);
    assert.equal(parsed[1]!.manifestProblem, 'its manifest is not JSON');
  });

  test('the listing command only reads and quotes the directory', () => {
    const cmd = listingCommand("/backups/it's here");
    assert.ok(cmd.startsWith(`[ -d '/backups/it'\\''s here' ] || exit 0`), cmd);
    assert.doesNotMatch(cmd, /\b(rm|mv|dd)\b/);
  });
});

describe('time stamps and --at', () => {
  test('the old tool\'s stamp format, in UTC', () => {
    assert.equal(stampOf(new Date('2026-12-02T08:30:05.999Z')), '2026-12-02-08-30-05');
    assert.equal(isoOfStamp('2026-12-02-08-30-05'), '2026-12-02T08:30:05Z');
  });

  test('a stamp, an ISO time or a prefix: the latest moment it covers', () => {
    assert.equal(parseAt('2026-12-02-08-30-05'), '2026-12-02-08-30-05');
    assert.equal(parseAt('2026-12-02T08:30:05Z'), '2026-12-02-08-30-05');
    assert.equal(parseAt('2026-12-02 08:30'), '2026-12-02-08-30-59');
    assert.equal(parseAt('2026-12-02'), '2026-12-02-23-59-59');
    assert.equal(parseAt('latest'), '9999-12-31-23-59-59');
    assert.throws(() => parseAt('yesterday'), (e: unknown) => e instanceof PmcError && e.code === 'PMC_E_USAGE' && /--at "yesterday" is not a time/.test(e.message));
    assert.throws(() => parseAt('-rf'), PmcError);
  });
});

describe('chains', () => {
  const entries = [
    entry('web', 'pm-2', '2026-12-01-00-00-00', 'full'),
    entry('web', 'pm-2', '2026-12-01-06-00-00', 'incremental', '2026-12-01-00-00-00'),
    entry('web', 'pm-2', '2026-12-02-00-00-00', 'full'),
    entry('web', 'pm-2', '2026-12-02-06-00-00', 'incremental', '2026-12-02-00-00-00'),
    entry('web', 'pm-1', '2026-12-02-07-00-00', 'full'),
    entry('web', 'pm-3', '2026-12-02-08-00-00', 'incremental', '2026-12-02-00-00-00'),
  ];
  const order = ['pm-1', 'pm-2', 'pm-3'];

  test('an increment needs its full image on the same node', () => {
    const chain = chainOf(entries, entries[1]!);
    assert.equal(chain.full.stamp, '2026-12-01-00-00-00');
    assert.equal(chain.increment?.stamp, '2026-12-01-06-00-00');
    assert.throws(() => chainOf(entries, entries[5]!), (e: unknown) => e instanceof PmcError && /needs the full image 2026-12-02-00-00-00, which is not on pm-3/.test(e.message));
  });

  test('--at picks the exact time or the newest at or before it, on the node asked for', () => {
    assert.equal(selectBackup(entries, 'web', '2026-12-01-06-00-00', undefined, order).target.stamp, '2026-12-01-06-00-00');
    assert.equal(selectBackup(entries, 'web', '2026-12-01-23-59-59', undefined, order).target.stamp, '2026-12-01-06-00-00');
    assert.equal(selectBackup(entries, 'web', '2026-12-02-07-30-00', 'pm-2', order).target.stamp, '2026-12-02-06-00-00');
    assert.equal(selectBackup(entries, 'web', '2026-12-02-07-30-00', undefined, order).target.node, 'pm-1');
    assert.throws(() => selectBackup(entries, 'web', '2026-11-30-00-00-00', undefined, order), /no backup of web at or before 2026-11-30-00-00-00; the oldest is 2026-12-01-00-00-00/);
    assert.throws(() => selectBackup(entries, 'db', '9999-12-31-23-59-59', undefined, order), /no backup of db on any node/);
  });

  test('the newest full image on a node is what a new increment is computed against', () => {
    assert.equal(newestFull(entries, 'web', 'pm-2')?.stamp, '2026-12-02-00-00-00');
    assert.equal(newestFull(entries, 'web', 'pm-3'), undefined);
  });
});

describe('prune', () => {
  const node = 'pm-2';
  const entries = [
    entry('web', node, '2026-11-30-00-00-00', 'full'),
    entry('web', node, '2026-11-30-06-00-00', 'incremental', '2026-11-30-00-00-00'),
    entry('web', node, '2026-12-01-00-00-00', 'full'),
    entry('web', node, '2026-12-01-06-00-00', 'incremental', '2026-12-01-00-00-00'),
    entry('web', node, '2026-12-01-12-00-00', 'incremental', '2026-12-01-00-00-00'),
    entry('web', node, '2026-12-02-00-00-00', 'full'),
    entry('web', node, '2026-12-02-06-00-00', 'incremental', '2026-12-02-00-00-00'),
    // Its full image was removed by hand: it cannot restore, but prune does not guess.
    entry('web', node, '2026-11-01-06-00-00', 'incremental', '2026-11-01-00-00-00'),
    // Another node's backups are counted on their own.
    entry('web', 'pm-1', '2026-11-01-00-00-00', 'full'),
  ];
  const names = (list: BackupEntry[]) => list.map((e) => `${e.node}:${e.stamp}`).sort();

  test('--keep-full 1 keeps exactly the newest chain (and what it cannot judge)', () => {
    const d = planPrune(entries, 1, 14);
    assert.deepEqual(names(d.keep), ['pm-1:2026-11-01-00-00-00', 'pm-2:2026-11-01-06-00-00', 'pm-2:2026-12-02-00-00-00', 'pm-2:2026-12-02-06-00-00']);
    assert.deepEqual(names(d.orphans), ['pm-2:2026-11-01-06-00-00']);
    assert.equal(d.delete.length, 5);
  });

  test('--keep-incremental counts per kept full image, newest first; 0 keeps full images only', () => {
    const d = planPrune(entries, 2, 1);
    assert.deepEqual(names(d.delete), ['pm-2:2026-11-30-00-00-00', 'pm-2:2026-11-30-06-00-00', 'pm-2:2026-12-01-06-00-00']);
    const none = planPrune(entries, 3, 0);
    assert.ok(none.delete.every((e) => e.kind === 'incremental'));
    assert.ok(none.keep.filter((e) => e.kind === 'full').length === 4);
  });

  test('the old tool\'s increments without manifest keep the full image they need', () => {
    const { entries: listed } = parseListing('pm-2', DIR, listing);
    const d = planPrune(listed, 1, 14);
    for (const kept of d.keep.filter((e) => e.kind === 'incremental' && !d.orphans.includes(e))) {
      assert.ok(d.keep.some((f) => f.kind === 'full' && f.vm === kept.vm && f.stamp === kept.base), `${kept.path} keeps ${kept.base}`);
    }
  });
});

describe('compressed full images (.base.zst)', () => {
  // A manifest pmc wrote before it could compress (no "compression" key), made into one of a .base.zst.
  const old = parseListing('pm-2', DIR, listing).entries.find((e) => e.manifest?.type === 'full')!.manifest!;
  const stamp = '2026-12-03-00-00-00';
  const zst = { ...old, vm: 'web', stamp, compression: 'zstd', file: { name: `${stamp}.base.zst`, bytes: 500, sha256: 'f'.repeat(64) } };
  const inc = { ...old, vm: 'web', stamp: '2026-12-03-06-00-00', type: 'incremental', base: stamp, xdelta3SourceWindow: 67108864 };
  const text = [
    `F\tweb/${stamp}.base.zst\t500`,
    'F\tweb/2026-12-03-06-00-00.xdelta3\t100',
    'F\tweb/2026-12-04-00-00-00.base\t1000',
    `M\tweb/${stamp}.json\t${JSON.stringify(zst)}`,
    `M\tweb/2026-12-03-06-00-00.json\t${JSON.stringify(inc)}`,
    `M\tweb/2026-12-04-00-00-00.json\t${JSON.stringify({ ...zst, stamp: '2026-12-04-00-00-00' })}`,
  ].join('\n');
  const { entries } = parseListing('pm-2', DIR, text);

  test('listed as full images with their compression; an increment needs one as it needs a .base', () => {
    assert.ok(!('compression' in old), 'the fixture is a manifest from before compression');
    assert.deepEqual(entries.map((e) => [e.stamp, e.kind, e.compression, e.path, e.base]), [
      [stamp, 'full', 'zstd', `${DIR}/web/${stamp}.base.zst`, undefined],
      ['2026-12-03-06-00-00', 'incremental', undefined, `${DIR}/web/2026-12-03-06-00-00.xdelta3`, stamp],
      ['2026-12-04-00-00-00', 'full', undefined, `${DIR}/web/2026-12-04-00-00-00.base`, undefined],
    ]);
    assert.equal(entries[0]!.manifest?.compression, 'zstd');
    assert.equal(chainOf(entries, entries[1]!).full.path, `${DIR}/web/${stamp}.base.zst`);
    // A .base whose manifest says it is compressed is not what the manifest describes.
    assert.match(entries[2]!.manifestProblem!, /its manifest describes another backup \(web 2026-12-04-00-00-00 full zstd\)/);
  });

  test('prune deletes the .base.zst with its manifest', () => {
    const plan = prunePlan(DIR, { delete: [entries[0]!], keep: [], orphans: [] }, 1, 0);
    assert.match(plan.steps[0]!.command, new RegExp(`rm -f -- ${DIR}/web/${stamp}\\.base\\.zst ${DIR}/web/${stamp}\\.json$`));
  });

  test('copy sends the manifest, then the .base.zst, and checks the sha256 of the compressed file there', () => {
    const state = buildCluster(CONFIG, probes(['pm-1', 'pm-2', 'pm-3']));
    const command = planCopy(state, DIR, [entries[0]!], new Set(), 'pm-3').steps[0]!.command;
    assert.ok(command.indexOf(`rsync -s -t -- ${DIR}/web/${stamp}.json`) < command.indexOf(`rsync -s -t -- ${DIR}/web/${stamp}.base.zst`), command);
    assert.match(command, new RegExp(`want=${'f'.repeat(64)} `));
    assert.ok(command.includes(`got=$(ssh -o BatchMode=yes -- pm-3 ${quote(sha256Command(`${DIR}/web/${stamp}.base.zst`))})`), command);
  });
});
