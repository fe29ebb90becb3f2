// KTAP v1: `daxpin report --format ktap` and the stream `daxpin run --ktap-console` writes,
// both read back by a strict KTAP parser; the mapping agrees with KCIDB's.

import t from 'tap';
import type { RunLine } from '../../lib/outcome';
import { kcidbReport } from '../../lib/report/kcidb';
import { KtapStream, planByConfig } from '../../lib/report/ktap';
import { renderReport } from '../../lib/report/render';
import { parseRunText } from '../../lib/report/runfile';
import { KERNEL_A, KERNEL_B, PLANTED, plannedKeys, runAText, runBText } from '../fixtures/runs';
import { ktapLeaves, parseKtap } from '../helpers/ktap';

const runs = [parseRunText(runAText(), 'a.jsonl'), parseRunText(runBText(), 'b.jsonl')];

t.test('report --format ktap: strict KTAP v1, nested per kernel × config', async (t) => {
  const text = renderReport(runs, 'ktap');
  t.match(text, /^KTAP version 1\n1\.\.6\n  KTAP version 1\n  # Subtest: /);
  const doc = parseKtap(text);
  t.equal(doc.plan, 6);
  t.same(
    doc.tests.map((s) => [s.name, s.ok]),
    [
      [`${KERNEL_A} ext4-dax`, true],
      [`${KERNEL_A} xfs-dax`, false],
      [`${KERNEL_A} xfs`, false],
      [`${KERNEL_B} ext4-dax`, false],
      [`${KERNEL_B} xfs-dax`, false],
      [`${KERNEL_B} xfs`, false],
    ],
  );
  for (const s of doc.tests) {
    t.equal(s.subtestName, s.name, 'each block names its test');
    t.equal(s.subtests![s.subtests!.length - 1].name, 'config', 'the config checks close each suite');
  }
  const leaves = ktapLeaves(doc);
  t.equal(leaves.size, plannedKeys().length * 2 + 6, 'every planned case of both runs, plus a config test per suite');
  const [foreignConfig, foreignCase] = PLANTED.foreign.split('/');
  const suiteB = doc.tests.find((s) => s.name === `${KERNEL_B} ${foreignConfig}`)!;
  const foreign = suiteB.subtests!.find((x) => x.name === foreignCase)!;
  t.equal(foreign.ok, false);
  t.same(foreign.diagnostics, ["foreign-data: the pipe view holds another file's bytes", "foreign-data: the canary view holds another file's bytes"]);
  t.equal(foreign.note, 'ok pipe=foreign canary=foreign', 'the outcome class after #');
  t.equal(leaves.get(`${KERNEL_B} ${PLANTED.notRun[0]}`), 'skip', 'planned, not run: SKIP');
  const xfsA = doc.tests.find((s) => s.name === `${KERNEL_A} xfs`)!;
  t.match(xfsA.subtests!.find((x) => x.name === 'none.truncate-shrink.pte-sync'), { ok: true, directive: 'SKIP', note: 'map-refused:EOPNOTSUPP' });
  t.match(xfsA.subtests!.find((x) => x.name === 'uring-fixed.truncate-shrink.pte-shared'), { ok: false, diagnostics: [/^error: FUSE mount failed: <b>fusermount3<\/b> & "quotes" <\/script>$/] });
  const xfsB = doc.tests.find((s) => s.name === `${KERNEL_B} xfs`)!;
  t.match(xfsB.subtests!.find((x) => x.name === 'config'), { ok: false, note: 'fsck', diagnostics: [/^fsck: xfs_repair -n exited 1/] });
  t.match(text, /\n  ok \d+ vmsplice\.punch-hole\.pmd-shared # SKIP planned but not run\n/);
});

t.test('ktap and kcidb agree on every case', async (t) => {
  const leaves = ktapLeaves(parseKtap(renderReport(runs, 'ktap')));
  const expect = { FAIL: 'fail', ERROR: 'fail', MISS: 'skip', SKIP: 'skip', PASS: 'pass' } as Record<string, string>;
  const report = kcidbReport(runs);
  let compared = 0;
  for (const x of report.tests) {
    const misc = x.misc as { config: string; case_id?: string };
    if (!misc.case_id) continue;
    const kernel = String(x.id).startsWith('daxpin:runA') ? KERNEL_A : KERNEL_B;
    t.equal(leaves.get(`${kernel} ${misc.config}/${misc.case_id}`), expect[x.status as string], `${kernel} ${misc.config}/${misc.case_id}`);
    compared++;
  }
  t.equal(compared, plannedKeys().length * 2);
});

t.test('the parser is strict: it refuses what is not KTAP v1', async (t) => {
  const good = 'KTAP version 1\n1..1\n  KTAP version 1\n  1..1\n  ok 1 a\nok 1 s\n';
  t.ok(parseKtap(good));
  const bad: Array<[string, string]> = [
    ['TAP 14 header', good.replace('KTAP version 1', 'TAP version 14')],
    ['plan count', good.replace('  1..1', '  1..2')],
    ['numbering', good.replace('  ok 1 a', '  ok 2 a')],
    ['a parent passing a failed subtest', good.replace('  ok 1 a', '  not ok 1 a')],
    ['four-space nesting', good.replace(/\n {2}/g, '\n    ')],
    ['a YAML block', good.replace('  ok 1 a\n', '  ok 1 a\n    ---\n')],
    ['no result for the block', 'KTAP version 1\n1..1\n  KTAP version 1\n  1..1\n  ok 1 a\n'],
  ];
  for (const [why, text] of bad) t.throws(() => parseKtap(text), why);
});

/** The JSONL lines of a run file as a stream sees them (the torn last line is never written). */
function records(text: string): RunLine[] {
  return text
    .split('\n')
    .filter((l) => l.endsWith('}'))
    .map((l) => JSON.parse(l) as RunLine)
    .filter((l) => l.record !== 'run');
}

function streamText(kernel: string, planned: string[], lines: RunLine[], end = true): string {
  const s = new KtapStream(kernel, planByConfig(planned));
  const out = [...s.begin(), ...lines.flatMap((l) => s.feed(l))];
  if (end) out.push(...s.feed({ record: 'end', schema: 1, runId: 'x', finishedAt: '2025-01-01T00:00:00Z', notRun: [], interrupted: false }));
  return `${out.join('\n')}\n`;
}

t.test('the console stream says what the report says, as the records arrive', async (t) => {
  for (const [kernel, text] of [
    [KERNEL_A, runAText()],
    [KERNEL_B, runBText()],
  ]) {
    const planned = JSON.parse(text.split('\n')[0]).planned as string[];
    const streamed = parseKtap(streamText(kernel, planned, records(text)));
    const reported = ktapLeaves(parseKtap(renderReport([parseRunText(text, 'x.jsonl')], 'ktap')));
    t.same(new Map([...ktapLeaves(streamed)].sort()), new Map([...reported].sort()), `${kernel}: same results`);
    t.same(
      streamed.tests.map((s) => s.name),
      ['xfs-dax', 'ext4-dax', 'xfs'].map((c) => `${kernel} ${c}`),
      'suites in run order',
    );
  }
});

t.test('the stream prints each case as it finishes and closes a config on its record', async (t) => {
  const text = runAText();
  const planned = JSON.parse(text.split('\n')[0]).planned as string[];
  const s = new KtapStream(KERNEL_A, planByConfig(planned));
  t.same(s.begin(), ['KTAP version 1', '1..3']);
  const recs = records(text);
  const first = s.feed(recs[0]);
  t.same(first.slice(0, 3), ['  KTAP version 1', `  # Subtest: ${KERNEL_A} xfs-dax`, `  1..${planned.filter((k) => k.startsWith('xfs-dax/')).length + 1}`]);
  t.match(first[3], /^ {2}ok 1 none\.truncate-shrink\.pte-shared # /);
  const configAt = recs.findIndex((r) => r.record === 'config');
  const lines = recs.slice(1, configAt + 1).flatMap((r) => s.feed(r));
  t.match(lines[lines.length - 2], /^ {2}ok \d+ config # xfs_repair -n: clean$/);
  t.equal(lines[lines.length - 1], `not ok 1 ${KERNEL_A} xfs-dax`);
});

t.test('on the console a failed case names its violations by kind only (the console is read for splats)', async (t) => {
  const text = runBText();
  const planned = JSON.parse(text.split('\n')[0]).planned as string[];
  const s = new KtapStream(KERNEL_B, planByConfig(planned), false);
  const out = [...s.begin(), ...records(text).flatMap((l) => s.feed(l))].join('\n');
  t.match(out, "  # foreign-data, foreign-data (details in the run's JSONL)\n  not ok 28 vmsplice.truncate-shrink.pte-shared # ok pipe=foreign canary=foreign");
  t.match(out, "  # kernel-log, taint (details in the run's JSONL)\n");
  t.notMatch(out, /WARNING|BUG|Oops|panic/, 'no splat text');
});

t.test('a run cut short: what did not run is SKIPped, later configs too', async (t) => {
  const text = runAText();
  const planned = JSON.parse(text.split('\n')[0]).planned as string[];
  const recs = records(text).slice(0, 5);
  const doc = parseKtap(streamText(KERNEL_A, planned, recs));
  t.equal(doc.plan, 3);
  const leaves = [...ktapLeaves(doc).values()];
  t.equal(leaves.filter((r) => r !== 'skip').length, 5, 'the five cases that ran');
  t.equal(leaves.length, planned.length + 3);
  t.match(doc.tests[2].subtests!.at(-1), { name: 'config', directive: 'SKIP', note: 'no config record (the run ended first)' });
  const unfinished = streamText(KERNEL_A, planned, recs, false);
  t.throws(() => parseKtap(unfinished), 'without the end (a crash) the KTAP is incomplete, as a crashed kernel test is');
});
