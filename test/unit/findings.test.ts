// The findings engine over the synthetic runs: predicates from the table, grouping,
// stable ids, presence per kernel with rates, flaky, tolerance of absent new fields.

import t from 'tap';
import { computeFindings, diffFindings, findingId, presenceRanges } from '../../lib/findings/findings';
import type { FindingsRun } from '../../lib/findings/findings';
import { PREDICATES } from '../../lib/findings/predicates';
import type { Predicate } from '../../lib/findings/predicates';
import { fieldValues } from '../../lib/findings/fields';
import { findingsRun, parseRunText } from '../../lib/report/runfile';
import { KERNEL_A, KERNEL_B, PLANTED, RUN_A, caseRecord, runAText, runBText } from '../fixtures/runs';
import { SCHEMA_VERSION } from '../../lib/outcome';
import type { CaseRecord, RunRecord } from '../../lib/outcome';

const a = findingsRun(parseRunText(runAText(), 'a.jsonl'));
const b = findingsRun(parseRunText(runBText(), 'b.jsonl'));

function runOf(kernel: string, runId: string, records: CaseRecord[]): FindingsRun {
  const run: RunRecord = {
    record: 'run', schema: SCHEMA_VERSION, runId, kernel, host: 'h', startedAt: '', argv: [], holdMs: 200, settleMs: 2000,
    planned: [...new Set(records.map((r) => `${r.config}/${r.caseId}`))], runner: 'vm',
  };
  return { run, records: records.map((r) => ({ ...r, runId, kernel })), notRun: [] };
}

t.test('field paths: wildcards, measured nulls, missing fields', async (t) => {
  const rec = caseRecord('xfs-dax', 'vmsplice.truncate-shrink.pte-shared', { views: { pipe: 'foreign' } });
  t.same(fieldValues(rec, 'views.pipe'), { present: true, values: ['foreign'] });
  t.ok(fieldValues(rec, 'views.*').values.includes('foreign'));
  t.same(fieldValues(rec, 'op.hung'), { present: true, values: [null] });
  t.equal(fieldValues(rec, 'op.future.state').present, false, 'a field the record does not have is missing');
  t.same(fieldValues({ op: { wait: null } }, 'op.wait.state'), { present: true, values: [null] }, 'a measured null is a value');
});

t.test('the planted behaviours become findings, present where they were planted', async (t) => {
  const report = computeFindings([b, a]);
  t.same(report.kernels.map((k) => k.kernel), [KERNEL_A, KERNEL_B], 'kernels in version order, whatever the input order');
  const byId = new Map(report.findings.map((f) => [f.id, f]));
  const status = (id: string) => byId.get(id)?.kernels.map((k) => k.status);

  const foreign = byId.get('foreign-after-early-return/fsdax.mapped');
  t.ok(foreign, 'foreign bytes after an early return');
  t.same(foreign?.cases, [PLANTED.foreign]);
  t.same(status('foreign-after-early-return/fsdax.mapped'), ['absent', 'present']);
  t.equal(foreign?.reproduce, `daxpin vm --kernel ${KERNEL_B} --config xfs-dax --cases 'vmsplice.truncate-shrink.pte-shared'`);

  t.same(status('longterm-pin-on-fsdax/xfs'), ['present', 'absent']);
  t.same(status('hung-after-release/fsdax.truncate.odirect-read/uninterruptible'), ['present', 'present']);
  t.same(status('kernel-splat/fsdax/warning-at-fs-dax-c-n-dax-insert-entry'), ['absent', 'present']);
  t.same(status('crashed/ext4-dax'), ['absent', 'present']);
  t.same(status('pin-refused/uring-fixed.fsdax/eopnotsupp'), ['present', 'absent']);
  t.same(status('pin-refused/uring-fixed.fsdax/efault'), ['absent', 'present']);
  t.same(byId.get('pin-refused/uring-fixed.fsdax/efault')?.kernels[1], { kernel: KERNEL_B, status: 'present', hits: 18, runs: 18, cases: byId.get('pin-refused/uring-fixed.fsdax/efault')?.kernels[1].cases });
  t.notOk(report.findings.some((f) => f.flaky), 'one run per kernel: nothing is flaky');
  t.equal(report.findings[0].predicate.severity, 'violation', 'violations first');

  t.match(report.kernels[1], { crashed: 1, notRun: 3, maxRepeat: 1 });
});

t.test('a crashed case is not measured for the other predicates', async (t) => {
  const report = computeFindings([a, b]);
  for (const f of report.findings.filter((x) => x.predicate.id !== 'crashed')) {
    t.notOk(f.kernels[1].cases.some((c) => c.key === PLANTED.crashed), f.id);
  }
});

t.test('ids are stable across runs: the same records give the same ids', async (t) => {
  const once = computeFindings([a, b]).findings.map((f) => f.id);
  const again = computeFindings([findingsRun(parseRunText(runBText(), 'b2')), findingsRun(parseRunText(runAText(), 'a2'))]).findings.map((f) => f.id);
  t.same(again, once);
  t.equal(findingId(PREDICATES[0], ['fsdax', 'unmapped'], null), 'foreign-after-early-return/fsdax.unmapped');
});

t.test('repeats: rates over every run, flaky when 0 < hits < runs', async (t) => {
  const key = 'ext4-dax/odirect-read.truncate-shrink.pte-shared-unmapped';
  const early = { op: { returnedMs: 5, blockedUntilRelease: false }, views: { canary: 'foreign' as const } };
  const waited = { op: { returnedMs: 205, blockedUntilRelease: true, afterReleaseMs: 4 } };
  const old = runOf('6.1.0-50-amd64', 'r61', [0, 1, 2].map((repeat) => caseRecord('ext4-dax', key.split('/')[1], { ...early, repeat })));
  const mid = runOf('6.12.38+deb13-amd64', 'r612', [0, 1, 2].map((repeat) => caseRecord('ext4-dax', key.split('/')[1], { ...(repeat === 1 ? early : waited), repeat })));
  const now = runOf('7.3.4+deb14-amd64', 'r73', [0, 1, 2].map((repeat) => caseRecord('ext4-dax', key.split('/')[1], { ...waited, repeat })));
  const report = computeFindings([now, mid, old]);
  const f = report.findings.find((x) => x.id === 'foreign-after-early-return/fsdax.unmapped');
  t.ok(f);
  t.same(f?.kernels.map((k) => [k.status, k.hits, k.runs]), [['present', 3, 3], ['present', 1, 3], ['absent', 0, 3]]);
  t.equal(f?.flaky, true);
  t.equal(f?.reproduce, `daxpin vm --kernel 6.1.0-50-amd64 --config ext4-dax --cases 'odirect-read.truncate-shrink.pte-shared-unmapped'`);
  t.same(presenceRanges(f!).map((r) => [r.status, r.from, r.to]), [['present', '6.1.0-50-amd64', '6.12.38+deb13-amd64'], ['absent', '7.3.4+deb14-amd64', '7.3.4+deb14-amd64']]);
  t.equal(report.kernels[0].maxRepeat, 3);
  const waitedF = report.findings.find((x) => x.id === 'waited-for-release/fsdax.unmapped.truncate');
  t.same(waitedF?.kernels.map((k) => `${k.hits}/${k.runs}`), ['0/3', '2/3', '3/3']);
});

t.test('a predicate over a field the records do not carry is not measured, never absent', async (t) => {
  const report = computeFindings([a, b]);
  t.notOk(report.findings.some((f) => f.predicate.id === 'waited-in-D'), 'the fixtures wait in S only');
  const withWait = caseRecord('xfs-dax', 'odirect-read.punch-hole.pte-shared', {
    op: { blockedUntilRelease: true, wait: { state: 'D', wchan: 'xfs_break_dax_layouts', site: ['xfs_break_dax_layouts'], atMs: 20 } },
  });
  const older = caseRecord('xfs-dax', 'odirect-read.punch-hole.pte-shared');
  delete (older.op as unknown as Record<string, unknown>).wait; // a record of an older schema
  const r = computeFindings([runOf('7.3.4+deb14-amd64', 'n', [withWait]), runOf('6.1.0-50-amd64', 'o', [older])]);
  const f = r.findings.find((x) => x.predicate.id === 'waited-in-D');
  t.equal(f?.id, 'waited-in-D/fsdax.fallocate/xfs-break-dax-layouts');
  t.same(f?.kernels.map((k) => k.status), ['not-measured', 'present']);
});

t.test('a record with a harness fault is in doubt: it decides nothing', async (t) => {
  const key = 'vmsplice.truncate-shrink.pte-shared';
  const faulty = caseRecord('xfs-dax', key, { views: { pipe: 'foreign' }, harnessFaults: ['pin never seen held'] });
  const r = computeFindings([runOf('7.3.4+deb14-amd64', 'n', [faulty])]);
  t.notOk(r.findings.some((f) => f.kernels.some((k) => k.status === 'present')));
});

t.test('the table is extended by a row, not by code', async (t) => {
  const extra: Predicate = {
    id: 'shifted-view-test', title: 'a view holds shifted bytes', doc: 'test row', severity: 'behaviour',
    requires: ['views'], when: [{ field: 'views.*', eq: 'shifted' }], groupBy: ['fsType'],
  };
  const rec = caseRecord('xfs-dax', 'none.collapse-range.pte-shared', { views: { file: 'shifted' as never } });
  const r = computeFindings([runOf('7.3.4+deb14-amd64', 'n', [rec])], [...PREDICATES, extra]);
  t.same(r.findings.filter((f) => f.predicate.id === 'shifted-view-test').map((f) => f.id), ['shifted-view-test/xfs']);
});

t.test('diff against a baseline: new, gone, rate', async (t) => {
  const report = computeFindings([a, b]);
  const baseline = computeFindings([a]);
  const changes = diffFindings(baseline, report);
  t.ok(changes.some((c) => c.change === 'new' && c.id === 'foreign-after-early-return/fsdax.mapped'));
  const back = diffFindings(report, baseline);
  t.ok(back.some((c) => c.change === 'gone' && c.id === 'foreign-after-early-return/fsdax.mapped'));
  t.equal(RUN_A.length > 0, true);
});

t.test('the predicates table: unique ids, each documented, conditions over fields a record can have', async (t) => {
  const ids = PREDICATES.map((p) => p.id);
  t.same([...new Set(ids)], ids, 'ids are unique');
  for (const p of PREDICATES) {
    t.match(p.id, /^[a-z][a-z0-9-]*[A-Za-z0-9]$/, `${p.id}: an id fit for a finding id`);
    t.ok(p.title.length > 0 && p.doc.length > 20, `${p.id} is documented`);
    t.ok(p.groupBy.length > 0, `${p.id} is grouped`);
    t.ok(p.when.length > 0, `${p.id} has conditions`);
  }
});

t.test('an op the signal alone woke after the release is a hang after release, not a wait', async (t) => {
  // 6.1's NBD pins on ext4-dax: asleep in ext4_break_layouts at the release, still asleep
  // when signalled 2 s later, then it returned 0.
  const woken = caseRecord('ext4-dax', 'nbd-aio-write.truncate-shrink.pte-shared', {
    op: { ok: true, result: 0, returnedMs: 2075, blockedUntilRelease: true, asleepAtRelease: true, hung: 'woken-by-signal', taskState: 'S', signalledAtMs: 2024.5 },
  });
  const ids = computeFindings([runOf(KERNEL_A, 'r1', [woken])]).findings.map((f) => f.id);
  t.ok(ids.some((id) => id.startsWith('hung-after-release/') && id.endsWith('/woken-by-signal')), ids.join(' '));
  t.notOk(ids.some((id) => id.startsWith('waited-for-release/')), 'not passed off as an ordinary wait');
});
