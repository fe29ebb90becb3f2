// The details of a comparison a reader relies on: the measured values beside a
// class, config differences, and text made safe for Markdown tables and code spans.
import t from 'tap';
import { ConfigRecord } from '../../lib/outcome';
import { code, compareRuns, keyValues, mdCell, renderComparison } from '../../lib/report/compare';
import type { Cell } from '../../lib/report/grid';
import { parseRunText } from '../../lib/report/runfile';
import { caseRecord, runAText } from '../fixtures/runs';

const cell = (record: Cell['record']): Cell => ({ record }) as Cell;

t.test('key values: what was measured, in reading order', async (t) => {
  t.equal(keyValues(cell(null)), 'planned, no record');
  t.equal(keyValues(cell(caseRecord('xfs', 'none.punch-hole.pte-shared', { op: { returnedMs: 3 } }))), 'op ok, returned at 3 ms');
  t.equal(
    keyValues(cell(caseRecord('xfs-dax', 'odirect-read.punch-hole.pte-shared', { op: { returnedMs: 503, blockedUntilRelease: true, afterReleaseMs: 3 } }))),
    'op ok, returned at 503 ms, 3 ms after release',
  );
  t.equal(keyValues(cell(caseRecord('xfs', 'none.ficlone-src.pte-shared', { op: { ok: false, errno: 'EOPNOTSUPP', returnedMs: 1 } }))), 'op EOPNOTSUPP, returned at 1 ms');
  t.equal(keyValues(cell(caseRecord('xfs', 'none.ficlone-src.pte-shared', { op: { ok: false, errno: null, returnedMs: null } }))), 'op failed');
  t.equal(keyValues(cell(caseRecord('xfs', 'uring-fixed.punch-hole.pte-shared', { pin: { ok: false, errno: 'EFAULT' }, op: { started: false } }))), 'pin EFAULT');
  t.equal(keyValues(cell(caseRecord('xfs', 'uring-fixed.punch-hole.pte-shared', { pin: { ok: false, errno: null }, op: { started: false } }))), 'pin failed');
  t.equal(
    keyValues(cell(caseRecord('xfs-dax', 'odirect-read.punch-hole.pte-shared', { status: 'abandoned', op: { ok: false, returnedMs: null, hung: 'uninterruptible', taskState: 'D' } }))),
    'status abandoned, op failed, hung (D)',
  );
  t.equal(keyValues(cell(caseRecord('xfs-dax', 'odirect-read.punch-hole.pte-shared', { op: { ok: false, returnedMs: null, hung: 'interruptible', taskState: null } }))), 'op failed, hung (interruptible)');
  t.equal(keyValues(cell(caseRecord('xfs-dax', 'none.punch-hole.pmd-shared', { pmd: true, op: { returnedMs: 2 } }))), 'op ok, returned at 2 ms, PMD fault seen');
  t.equal(keyValues(cell(caseRecord('xfs-dax', 'none.punch-hole.pmd-shared', { pmd: false, op: { returnedMs: 2 } }))), 'op ok, returned at 2 ms, no PMD fault');
  t.equal(keyValues(cell(caseRecord('xfs', 'none.punch-hole.pmd-shared', { pmd: null, op: { returnedMs: 2 } }))), 'op ok, returned at 2 ms', 'not observable: nothing said');
  t.equal(keyValues(cell(caseRecord('xfs', 'none.punch-hole.pte-shared', { pmd: false, op: { returnedMs: 2 } }))), 'op ok, returned at 2 ms', 'no PMD mention for a PTE mapping');
});

t.test('text in tables and code spans', async (t) => {
  t.equal(mdCell('a|b\nc'), 'a\\|b c');
  t.equal(mdCell('a|b|c'), 'a\\|b\\|c', 'every pipe');
  t.equal(code('x`y'), "`x'y`");
  t.equal(code('a`b`c'), "`a'b'c`", 'every backtick');
  t.equal(code('a \n  b\nc'), '`a b c`', 'lines joined with one space');
});

t.test('config changes: DAX verification, fsck and setup errors', async (t) => {
  const a = parseRunText(runAText(), 'a.jsonl');
  const b = parseRunText(runAText(), 'b.jsonl');
  const xfs = b.configs.find((c) => c.config === 'xfs') as ConfigRecord;
  xfs.daxVerified = !xfs.daxVerified;
  xfs.error = 'mkfs failed';
  const cmp = compareRuns(a, b);
  const change = cmp.configChanges.find((c) => c.config === 'xfs');
  t.ok(change);
  t.same(change!.differences, [`DAX verified: ${xfs.daxVerified ? 'no → yes' : 'yes → no'}`, 'setup error: none → mkfs failed']);
  t.same(change!.newViolations, []);
  t.match(renderComparison(cmp), `## Config changes\n\n- xfs: DAX verified: `);
  const back = compareRuns(b, a).configChanges.find((c) => c.config === 'xfs');
  t.same(back!.differences.slice(-1), ['setup error: mkfs failed → none']);
});

t.test('the run lines name kernel, runner, accel and the number of cases', async (t) => {
  const a = parseRunText(runAText(), 'a.jsonl');
  const text = renderComparison(compareRuns(a, a));
  const cases = a.cases.length;
  t.match(text, new RegExp(`- base: a\\.jsonl: kernel ${a.run.kernel.replace(/[.+]/g, '\\$&')}, ${a.run.runner}${a.run.accel ? `/${a.run.accel}` : ''}, run ${a.run.runId}, ${cases} cases`));
});
