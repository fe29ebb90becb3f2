// Every report format from the two synthetic runs: Markdown, JUnit XML (parsed),
// TAP 14 (parsed); KCIDB has its own file (report-kcidb.test.ts).

import { XMLParser, XMLValidator } from 'fast-xml-parser';
import t from 'tap';
import { Parser } from 'tap-parser';
import type { FinalResults } from 'tap-parser';
import { renderReport } from '../../lib/report/render';
import { parseRunText } from '../../lib/report/runfile';
import { KERNEL_A, KERNEL_B, PLANTED, plannedKeys, runAText, runBText } from '../fixtures/runs';

const runs = [parseRunText(runAText(), 'a.jsonl'), parseRunText(runBText(), 'b.jsonl')];

t.test('markdown: violations with reproduction first, then changes, then tables', async (t) => {
  const md = renderReport(runs, 'md');
  const at = (s: string) => md.indexOf(s);
  t.ok(at('## Invariant violations') < at('## What changed between kernels'));
  t.ok(at('## What changed between kernels') < at('## Outcomes per config'));
  t.match(md, `\`daxpin vm --kernel ${KERNEL_B} --config xfs-dax --cases 'vmsplice.truncate-shrink.pte-shared'\``);
  t.match(md, `\`daxpin run --dir /mnt/daxpin --config xfs-dax --cases 'uring-fixed.ficlone-src.pmd-shared'\``);
  t.match(md, 'foreign-data: `the pipe view holds another file\'s bytes`');
  t.match(md, 'kernel-log: `WARNING: at fs/dax.c:N dax_insert_entry`');
  t.match(md, 'crashed: `kernel crashed or wedged: Kernel panic - not syncing: Fatal exception`');
  t.match(md, '**4 regression(s)**');
  t.match(md, '> note: last line of b.jsonl is incomplete (killed run?); ignored');
  t.match(md, /\| xfs \| page cache, fsck clean \| page cache, \*\*fsck failed\*\* \(exit 1\) \|/);
  t.match(md, '| `xfs/*.*.pte-sync (12)` | `map-refused:EOPNOTSUPP` | `map-refused:EOPNOTSUPP` |');
  t.match(md, /\| `ext4-dax\/uring-fixed\.\*\.\* \(9\)` `xfs-dax\/uring-fixed\.\*\.\* \(8 of 9\)` \| `pin-refused:EOPNOTSUPP` \| `pin-refused:EFAULT` \|/);
  const single = renderReport([runs[0]], 'md');
  t.notMatch(single, 'What changed', 'one run: nothing to compare');
});

t.test('junit: well-formed XML, one suite per kernel × config, documented mapping', async (t) => {
  const xml = renderReport(runs, 'junit');
  t.equal(XMLValidator.validate(xml), true, 'well-formed');
  const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', isArray: (name) => ['testsuite', 'testcase', 'property'].includes(name) }).parse(xml);
  const suites = doc.testsuites.testsuite as Record<string, any>[];
  t.same(
    suites.map((s) => s.name),
    [`${KERNEL_A} ext4-dax`, `${KERNEL_A} xfs-dax`, `${KERNEL_A} xfs`, `${KERNEL_B} ext4-dax`, `${KERNEL_B} xfs-dax`, `${KERNEL_B} xfs`],
  );
  const find = (kernel: string, key: string) => {
    const [config, caseId] = key.split('/');
    const suite = suites.find((s) => s.name === `${kernel} ${config}`) as Record<string, any>;
    return (suite.testcase as Record<string, any>[]).find((c) => c.name === caseId) as Record<string, any>;
  };
  t.equal(find(KERNEL_B, PLANTED.foreign).failure.type, 'foreign-data');
  t.equal(find(KERNEL_B, PLANTED.warn).failure.type, 'kernel-log');
  t.equal(find(KERNEL_B, PLANTED.crashed).error.type, 'crashed');
  t.match(find(KERNEL_B, PLANTED.crashed)['system-out'], /Kernel panic - not syncing/);
  t.ok(find(KERNEL_B, PLANTED.notRun[0]).skipped !== undefined, 'not run: skipped');
  t.ok(find(KERNEL_A, 'xfs/none.truncate-shrink.pte-sync').skipped !== undefined, 'map refused: skipped');
  t.equal(find(KERNEL_A, PLANTED.error).error.type, 'error');
  t.match(find(KERNEL_A, PLANTED.error).error.message, '<b>fusermount3</b> & "quotes" </script>', 'escaped text reads back intact');
  const pinRefused = find(KERNEL_A, 'xfs-dax/uring-fixed.punch-hole.pte-shared');
  t.notOk(pinRefused.failure || pinRefused.error || pinRefused.skipped !== undefined, 'a refusal is recorded behaviour: passed');
  const xfsB = suites.find((s) => s.name === `${KERNEL_B} xfs`) as Record<string, any>;
  t.equal((xfsB.testcase as Record<string, any>[]).find((c) => c.name === 'config fsck')?.failure.type, 'fsck');
  const totals = suites.reduce((n, s) => n + Number(s.tests), 0);
  t.equal(Number(doc.testsuites.tests), totals, 'totals add up');
  t.equal(totals, plannedKeys().length * 2 + 5, 'every planned case of both runs, plus the fsck checks');
});

t.test('junit: characters XML 1.0 cannot carry are replaced', async (t) => {
  const text = runAText().replace('"error":"FUSE mount failed', '"error":"\\u001b[31mFUSE\\u0000 mount failed');
  const xml = renderReport([parseRunText(text, 'a.jsonl')], 'junit');
  t.equal(XMLValidator.validate(xml), true);
  t.match(xml, '\uFFFD[31mFUSE\uFFFD mount failed');
});

function parseTap(text: string): Promise<FinalResults> {
  return new Promise((resolve) => {
    const parser = new Parser({ strict: true }, resolve);
    parser.end(text);
  });
}

t.test('tap: TAP 14 that a strict parser accepts, with the documented mapping', async (t) => {
  const tap = renderReport(runs, 'tap');
  t.match(tap, /^TAP version 14\n1\.\.6\n/);
  const result = await parseTap(tap);
  t.equal(result.count, 6, 'one subtest per kernel × config');
  t.equal(result.fail, 5, 'every suite with a violation, crash or error fails');
  t.same(result.failures.filter((f) => 'tapError' in f && f.tapError), [], 'no parse errors');
  t.match(tap, `    not ok 28 - vmsplice.truncate-shrink.pte-shared: ok pipe=foreign canary=foreign\n      ---\n`);
  t.match(tap, '    ok 2 - none.truncate-shrink.pte-sync # SKIP map-refused:EOPNOTSUPP');
  t.match(tap, /ok \d+ - vmsplice\.punch-hole\.pmd-shared # SKIP planned but not run/);
  t.match(tap, /ok \d+ - uring-fixed\.punch-hole\.pte-shared: pin-refused:EOPNOTSUPP\n/);
  t.match(tap, /not ok \d+ - config fsck: xfs_repair -n exited 1/);
  t.match(tap, '\nnot ok 6 - 6.16.3+deb14-amd64 xfs\n', 'B/xfs fails by its fsck alone');
});

t.test("a kernel the VM runner stopped early says why in the kernels tables", async (t) => {
  const text = runAText().replace(/"interrupted":false\}/, '"interrupted":false,"error":"gave up after 3 boots (--max-boots)"}');
  t.match(text, /"error":"gave up/, 'the fixture has the end record this test edits');
  const stopped = [parseRunText(text, 'a.jsonl')];
  t.match(renderReport(stopped, 'md'), '| stopped: gave up after 3 boots (--max-boots) |');
  t.match(renderReport(stopped, 'html'), '<td>stopped: gave up after 3 boots (--max-boots)</td>');
  t.match(renderReport([runs[0]], 'md'), /\| yes \|/, 'a run that finished its plan says yes');
});
