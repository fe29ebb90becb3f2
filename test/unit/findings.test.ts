// The findings engine over the synthetic runs: predicates from the table, grouping,
// stable ids, presence per kernel with rates, flaky, tolerance of absent new fields.

import t from 'tap';
import { compareReleases, computeFindings, diffFindings, findingId, presenceRanges, rateText } from '../../lib/findings/findings';
import type { FindingsRun } from '../../lib/findings/findings';
import { PREDICATES } from '../../lib/findings/predicates';
import type { Condition, Dimension, Predicate } from '../../lib/findings/predicates';
import { conditionHolds, dimensionOf, fieldValues } from '../../lib/findings/fields';
import { LAYOUT_OPS } from '../../lib/cases/matrix';
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

t.test('field paths: a value that is not an object ends the path; a wildcard reaching the field in some elements reaches it', async (t) => {
  t.same(fieldValues({ op: { errno: 'EIO' } }, 'op.errno.code'), { present: false, values: [] }, 'a string has no fields');
  const detail = { viewDetail: { pipe: { foreignFrom: ['canary'] }, buffer: {} } };
  t.same(fieldValues(detail, 'viewDetail.*.foreignFrom.*'), { present: true, values: ['canary'] }, 'one view with the field is enough');
  t.same(fieldValues({ viewDetail: {} }, 'viewDetail.*.foreignFrom'), { present: true, values: [] }, 'no view detail is measured, not missing');
});

t.test('conditions: each test, and a missing field holds only for ne', async (t) => {
  const rec = { status: 'done', op: { errno: 'EINTR', returnedMs: 205 }, kernelLog: [{ signature: 'Call Trace: <TASK>' }, { signature: 'WARNING: at fs/dax.c:N dax_insert_entry' }] };
  const holds = (c: Condition) => conditionHolds(rec, c);
  t.ok(holds({ field: 'op.errno', eq: 'EINTR' }));
  t.notOk(holds({ field: 'op.errno', ne: 'EINTR' }));
  t.ok(holds({ field: 'op.errno', ne: 'EIO' }));
  t.ok(holds({ field: 'status', in: ['done', 'abandoned'] }));
  t.notOk(holds({ field: 'status', in: ['crashed', 'error'] }));
  t.ok(holds({ field: 'op.errno', matches: '^EINT' }));
  t.notOk(holds({ field: 'op.errno', matches: '^EIO$' }));
  t.notOk(holds({ field: 'op.returnedMs', matches: '205' }), 'a regular expression matches strings only');
  t.ok(holds({ field: 'op.returnedMs', gt: 200 }));
  t.notOk(holds({ field: 'op.returnedMs', gt: 205 }), 'gt is strict');
  t.notOk(holds({ field: 'op.errno', gt: 0 }), 'gt compares numbers only');
  t.notOk(conditionHolds({ op: { errno: '500' } }, { field: 'op.errno', gt: 200 }), 'a numeric string is not a number');
  t.ok(holds({ field: 'kernelLog.*.signature', splat: true }), 'one splat among the lines is enough');
  t.notOk(conditionHolds({ kernelLog: [{ signature: 'Call Trace: <TASK>' }] }, { field: 'kernelLog.*.signature', splat: true }), 'a call trace alone is not a splat');
  t.notOk(conditionHolds({ op: { errno: 7 } }, { field: 'op.errno', splat: true }), 'a splat is a log line');
  t.ok(holds({ field: 'op.future', ne: 'x' }), 'nothing equals a missing field');
  t.notOk(holds({ field: 'op.future', eq: 'x' }));
  t.notOk(holds({ field: 'op.future', in: ['x'] }));
});

t.test('dimensions: every grouping dimension from the record and its rows; names the tables do not know fall back to the name', async (t) => {
  const rec = caseRecord('ext4-dax', 'nbd-aio-write.zero-range.pmd-shared-unmapped');
  const dims: Dimension[] = ['storage', 'fsType', 'config', 'mapping', 'mappingState', 'pageSize', 'pinMethod', 'opFamily', 'layoutOp'];
  t.same(dims.map((d) => dimensionOf(rec, d)), ['fsdax', 'ext4', 'ext4-dax', 'pmd-shared-unmapped', 'unmapped', 'pmd', 'nbd-aio-write', 'fallocate', 'zero-range']);
  t.equal(dimensionOf(caseRecord('xfs', 'none.truncate-shrink.pte-shared'), 'storage'), 'page-cache');
  t.equal(dimensionOf(caseRecord('xfs', 'none.truncate-shrink.pte-shared'), 'mappingState'), 'mapped');
  const future = caseRecord('xfs-dax', 'none.exchange-range.pud-shared-unmapped');
  t.same([dimensionOf(future, 'mappingState'), dimensionOf(future, 'pageSize'), dimensionOf(future, 'opFamily')], ['unmapped', 'pud', 'exchange-range']);
  t.same([dimensionOf(caseRecord('xfs-dax', 'none.exchange-range.pud-shared'), 'mappingState')], ['mapped']);
});

t.test('op families: every layout op in one, grouped by what it does to the pinned blocks', async (t) => {
  const family = new Map<string, string[]>();
  for (const op of LAYOUT_OPS) {
    const f = dimensionOf(caseRecord('xfs-dax', `none.${op.name}.pte-shared`), 'opFamily');
    family.set(f, [...(family.get(f) ?? []), op.kind]);
  }
  t.same(Object.fromEntries([...family].map(([f, kinds]) => [f, [...new Set(kinds)].sort()])), {
    truncate: ['truncate'],
    fallocate: ['collapse-range', 'insert-range', 'punch-hole', 'zero-range'],
    share: ['copy-range', 'dedupe', 'ficlone', 'ficlonerange'],
    evict: ['umount', 'unlink'],
    'dax-flag': ['dax-flag'],
    freeze: ['freeze'],
  });
});

t.test('row.* conditions read the case rows of the matrix tables', async (t) => {
  const extra: Predicate = {
    id: 'unmapped-fallocate-test', title: 'unmapped punch', doc: 'test row over the matrix columns', severity: 'behaviour', requires: ['op.ok'],
    when: [{ field: 'row.mapping.mappedDuringOp', eq: false }, { field: 'row.op.kind', eq: 'punch-hole' }, { field: 'row.pin.kernelWritesPages', eq: true }],
    groupBy: ['config'],
  };
  const recs = [
    caseRecord('xfs-dax', 'odirect-read.punch-hole.pte-shared-unmapped'),
    caseRecord('xfs', 'odirect-read.punch-hole.pte-shared'),
    caseRecord('ext4-dax', 'odirect-read.zero-range.pte-shared-unmapped'),
    caseRecord('ext4', 'odirect-write.punch-hole.pte-shared-unmapped'),
  ];
  const r = computeFindings([runOf(KERNEL_A, 'r', recs)], [extra]);
  t.same(r.findings.map((f) => f.id), ['unmapped-fallocate-test/xfs-dax']);
});

t.test('each predicate: the record it is about gives its finding, in its group and with its subject', async (t) => {
  const early = { op: { ok: true, returnedMs: 5, blockedUntilRelease: false } };
  const waited = { op: { ok: true, returnedMs: 505, blockedUntilRelease: true, afterReleaseMs: 3 } };
  const expect: [CaseRecord, string[]][] = [
    [caseRecord('xfs-dax', 'vmsplice.truncate-shrink.pte-shared-unmapped', { ...early, views: { canary: 'foreign' }, viewDetail: { canary: { foreignFrom: ['peer'] } } as never }),
      ['foreign-after-early-return/fsdax.unmapped', 'foreign-from/fsdax.unmapped/peer', 'returned-while-pinned/fsdax.unmapped.truncate']],
    [caseRecord('ext4', 'odirect-read.collapse-range.pte-shared', { ...waited, views: { file: 'foreign' } }),
      ['foreign-data/page-cache.mapped.fallocate', 'foreign-from/page-cache.mapped/none', 'waited-for-release/page-cache.mapped.fallocate']],
    [caseRecord('xfs-dax', 'aio-read.ficlonerange.pmd-shared', { op: { ...waited.op, wait: { state: 'D', wchan: null, site: [], atMs: 20 } } }),
      ['waited-for-release/fsdax.mapped.share', 'waited-in-D/fsdax.share/none']],
    [caseRecord('ext4-dax', 'odirect-read.insert-range.pte-shared', { ...early, views: { file: 'shifted' as never } }),
      ['returned-while-pinned/fsdax.mapped.fallocate', 'shifted-view/fsdax.fallocate.mapped']],
    [caseRecord('ext4-dax', 'nbd-aio-write.unlink.pte-shared', { op: { ok: false, returnedMs: null, blockedUntilRelease: true, hung: 'interruptible' } }),
      ['hung-after-release/fsdax.evict.nbd-aio-write/interruptible']],
    [caseRecord('xfs-dax', 'rdma-mr.dax-flag.pte-shared', { op: waited.op, kernelLog: [{ level: 4, signature: 'Call Trace: <TASK>', text: '' }, { level: 4, signature: 'WARNING: at fs/dax.c:N dax_insert_entry', text: '' }] }),
      ['kernel-splat/fsdax/warning-at-fs-dax-c-n-dax-insert-entry', 'longterm-pin-on-fsdax/xfs', 'waited-for-release/fsdax.mapped.dax-flag']],
    [caseRecord('xfs-dax', 'uring-fixed.freeze.pte-shared', { pin: { ok: false, errno: 'EOPNOTSUPP' }, op: { started: false, ok: false, returnedMs: null } }),
      ['pin-refused/uring-fixed.fsdax/eopnotsupp']],
    [caseRecord('xfs-dax', 'odirect-read.collapse-range.pte-shared', { status: 'abandoned', op: { ok: false, returnedMs: null, blockedUntilRelease: true, hung: 'uninterruptible' }, views: { buffer: 'shifted' as never } }),
      ['hung-after-release/fsdax.fallocate.odirect-read/uninterruptible', 'shifted-view/fsdax.fallocate.mapped']],
    [caseRecord('xfs-dax', 'vmsplice.unlink.pte-shared', { op: { ok: false, returnedMs: null, blockedUntilRelease: false }, views: { pipe: 'foreign' } }),
      ['foreign-from/fsdax.mapped/none']],
    [caseRecord('xfs-dax', 'rdma-mr.freeze.pte-shared', { pin: { ok: false, errno: null }, op: { started: false, ok: false, returnedMs: null } }), []],
    [caseRecord('xfs', 'none.umount.pte-shared', { status: 'crashed', op: { ok: false, returnedMs: null } }), ['crashed/xfs']],
    [caseRecord('xfs', 'none.truncate-shrink.pte-shared'), []],
  ];
  const subjects = new Map<string, string | null>();
  for (const [rec, ids] of expect) {
    const found = computeFindings([runOf(KERNEL_A, 'r', [rec])]).findings;
    t.same(found.map((f) => f.id).sort(), ids, `${rec.config}/${rec.caseId}`);
    t.ok(found.every((f) => f.kernels[0].status === 'present'));
    for (const f of found) subjects.set(f.id, f.subject);
  }
  t.equal(subjects.get('waited-in-D/fsdax.share/none'), '?', 'a measured null subject reads as unknown');
  t.equal(subjects.get('foreign-from/page-cache.mapped/none'), '?', 'so does a subject the record does not detail');
  t.ok(PREDICATES.every((p) => p.severity === 'violation' || p.severity === 'behaviour'));
  t.same(PREDICATES.filter((p) => p.severity === 'violation').map((p) => p.id).sort(),
    ['crashed', 'foreign-after-early-return', 'foreign-data', 'foreign-from', 'hung-after-release', 'kernel-splat', 'longterm-pin-on-fsdax'],
    'violations: what must never happen (wrong bytes, a hang past the release, a splat or crash, a long-term pin on fsdax)');
});

t.test('a record without a field a predicate requires is not measured for it, never absent', async (t) => {
  const cases: [string, string, CaseRecord][] = [
    ['foreign-after-early-return', 'views', caseRecord('xfs-dax', 'vmsplice.truncate-shrink.pte-shared', { views: { pipe: 'foreign' } })],
    ['foreign-after-early-return', 'op.blockedUntilRelease', caseRecord('xfs-dax', 'vmsplice.truncate-shrink.pte-shared', { views: { pipe: 'foreign' } })],
    ['foreign-data', 'views', caseRecord('xfs-dax', 'vmsplice.truncate-shrink.pte-shared', { op: { blockedUntilRelease: true }, views: { pipe: 'foreign' } })],
    ['foreign-data', 'op.blockedUntilRelease', caseRecord('xfs-dax', 'vmsplice.truncate-shrink.pte-shared', { op: { blockedUntilRelease: true }, views: { pipe: 'foreign' } })],
    ['returned-while-pinned', 'op.blockedUntilRelease', caseRecord('xfs-dax', 'vmsplice.truncate-shrink.pte-shared')],
    ['waited-for-release', 'op.blockedUntilRelease', caseRecord('xfs-dax', 'vmsplice.truncate-shrink.pte-shared', { op: { blockedUntilRelease: true } })],
    ['foreign-from', 'viewDetail', caseRecord('xfs-dax', 'vmsplice.truncate-shrink.pte-shared', { views: { pipe: 'foreign' } })],
    ['shifted-view', 'views', caseRecord('xfs-dax', 'vmsplice.collapse-range.pte-shared', { views: { pipe: 'shifted' as never } })],
    ['hung-after-release', 'op.hung', caseRecord('xfs-dax', 'vmsplice.truncate-shrink.pte-shared', { op: { hung: 'uninterruptible' } })],
    ['kernel-splat', 'kernelLog', caseRecord('xfs-dax', 'vmsplice.truncate-shrink.pte-shared', { kernelLog: [{ level: 4, signature: 'BUG: soft lockup', text: '' }] })],
    ['longterm-pin-on-fsdax', 'pin.ok', caseRecord('xfs-dax', 'uring-fixed.truncate-shrink.pte-shared')],
    ['longterm-pin-on-fsdax', 'daxVerified', caseRecord('xfs-dax', 'uring-fixed.truncate-shrink.pte-shared')],
    ['pin-refused', 'pin.ok', caseRecord('xfs-dax', 'uring-fixed.truncate-shrink.pte-shared', { pin: { ok: false, errno: 'EFAULT' } })],
  ];
  for (const [id, field, rec] of cases) {
    const older = structuredClone(rec);
    const path = field.split('.');
    let parent = older as unknown as Record<string, unknown>;
    for (const step of path.slice(0, -1)) parent = parent[step] as Record<string, unknown>;
    delete parent[path[path.length - 1]];
    const r = computeFindings([runOf(KERNEL_A, 'old', [older]), runOf(KERNEL_B, 'new', [rec])]);
    const f = r.findings.find((x) => x.predicate.id === id);
    t.same(f?.kernels.map((k) => k.status), ['not-measured', 'present'], `${id} without ${field}`);
  }
});

t.test('finding ids: the subject as a short slug', async (t) => {
  const splat = PREDICATES.find((p) => p.id === 'kernel-splat') as Predicate;
  const long = 'BUG: KASAN: slab-use-after-free in dax_layout_busy_page_range+0x1c/0x80 [ffff888100000000]';
  const id = findingId(splat, ['fsdax'], long);
  t.equal(id, 'kernel-splat/fsdax/bug-kasan-slab-use-after-free-in-dax-layout-busy-page-range-0x1c');
  t.equal(findingId(splat, ['fsdax'], '[ WARNING: possible circular locking dependency detected ]'), 'kernel-splat/fsdax/warning-possible-circular-locking-dependency-detected', 'no dash at either end');
  t.equal(findingId(splat, ['fsdax'], 'BUG: KASAN: slab-use-after-free in dax_layout_busy_page_range+0x1/0x80'), 'kernel-splat/fsdax/bug-kasan-slab-use-after-free-in-dax-layout-busy-page-range-0x1', 'cut at 64, not ending in a dash');
  t.equal(findingId(splat, ['fsdax'], '???'), 'kernel-splat/fsdax/none');
});

t.test('kernels in release order, numerically', async (t) => {
  const kernels = ['6.12.38+deb13-amd64', '6.9.12-amd64', '7.3.4+deb14-amd64', '6.1.0-50-amd64', '6.12.9-amd64'];
  const r = computeFindings(kernels.map((k, i) => runOf(k, `r${i}`, [caseRecord('xfs', 'none.truncate-shrink.pte-shared')])));
  t.same(r.kernels.map((k) => k.kernel), ['6.1.0-50-amd64', '6.9.12-amd64', '6.12.9-amd64', '6.12.38+deb13-amd64', '7.3.4+deb14-amd64']);
  t.ok(compareReleases('6.12.0', '6.12.0') === 0 && compareReleases('6.12.0-amd64', '6.12.0-cloud-amd64') !== 0, 'same numbers: the names decide');
});

t.test('presence per kernel: not run where the case has no record, not measured where it errored', async (t) => {
  const refused = caseRecord('xfs-dax', 'uring-fixed.truncate-shrink.pte-shared', { pin: { ok: false, errno: 'EOPNOTSUPP' }, op: { started: false, ok: false, returnedMs: null } });
  const errored = { ...refused, status: 'error' as const, error: 'mkfs failed' };
  const other = caseRecord('xfs-dax', 'none.truncate-shrink.pte-shared');
  const r = computeFindings([runOf('6.1.0-50-amd64', 'a', [refused]), runOf('6.12.38+deb13-amd64', 'b', [errored]), runOf('7.3.4+deb14-amd64', 'c', [other])]);
  const f = r.findings.find((x) => x.id === 'pin-refused/uring-fixed.fsdax/eopnotsupp');
  t.same(f?.kernels.map((k) => [k.status, k.runs, k.cases.length]), [['present', 1, 1], ['not-measured', 0, 0], ['not-run', 0, 0]]);
  t.same(f?.kernels.map((k) => k.hits), [1, 0, 0]);
  t.equal(f?.title, 'pin refused [uring-fixed, fsdax]: EOPNOTSUPP', 'the title names the group and the subject');
  t.same(f?.group, { pinMethod: 'uring-fixed', storage: 'fsdax' });
  t.equal(f?.subject, 'EOPNOTSUPP');
  t.match(r.kernels[1], { kernel: '6.12.38+deb13-amd64', runIds: ['b'], cases: 1, records: 1, errors: 1, crashed: 0 });
  t.match(r.kernels[0], { errors: 0 });
  t.ok(r.findings.every((x) => x.kernels.some((k) => k.status === 'present')), 'a report holds only findings present somewhere');
});

t.test('several cases in one finding: sorted, flaky when one of them is, reproduced by the most reliable', async (t) => {
  const key1 = 'ficlone-src.pte-shared-unmapped';
  const early = (caseId: string, repeat: number, foreign: boolean) =>
    caseRecord('ext4-dax', caseId, { repeat, op: { returnedMs: 5, blockedUntilRelease: false }, views: { canary: foreign ? 'foreign' : 'original' } });
  const recs = [
    ...[0, 1, 2].map((i) => early(`vmsplice.truncate-zero.${key1.split('.')[1]}`, i, true)),
    ...[0, 1, 2].map((i) => early('odirect-read.truncate-shrink.pte-shared-unmapped', i, i === 0)),
  ];
  const r = computeFindings([runOf(KERNEL_A, 'r', recs)]);
  const f = r.findings.find((x) => x.id === 'foreign-after-early-return/fsdax.unmapped');
  t.same(f?.cases, ['ext4-dax/odirect-read.truncate-shrink.pte-shared-unmapped', 'ext4-dax/vmsplice.truncate-zero.pte-shared-unmapped']);
  t.same(f?.kernels[0].cases.map((c) => [c.key, c.hits, c.runs]), [
    ['ext4-dax/odirect-read.truncate-shrink.pte-shared-unmapped', 1, 3],
    ['ext4-dax/vmsplice.truncate-zero.pte-shared-unmapped', 3, 3],
  ]);
  t.equal(f?.flaky, true, 'one flaky case makes the finding flaky');
  t.equal(f?.reproduce, `daxpin vm --kernel ${KERNEL_A} --config ext4-dax --cases 'vmsplice.truncate-zero.pte-shared-unmapped'`, '3/3 beats 1/3');
  t.equal(f?.title, 'op returned while the pin was held, and bytes of another file reached a view [fsdax, unmapped]');
  const flakyOnly = computeFindings([runOf(KERNEL_A, 'r', recs.slice(3))]).findings.find((x) => x.id === f?.id);
  t.equal(flakyOnly?.reproduce, `daxpin vm --kernel ${KERNEL_A} --config ext4-dax --cases 'odirect-read.truncate-shrink.pte-shared-unmapped' --repeat 3`, 'a flaky case is reproduced with repeats');
  const tie = computeFindings([runOf(KERNEL_A, 'r', [early('vmsplice.truncate-zero.pte-shared-unmapped', 0, true), early('odirect-read.truncate-zero.pte-shared-unmapped', 0, true)])]).findings.find((x) => x.id === f?.id);
  t.match(tie?.reproduce, /'odirect-read\.truncate-zero\.pte-shared-unmapped'$/, 'equal rates: the first case by name');
  const twoRuns = [runOf(KERNEL_A, 'host', [caseRecord('xfs', 'none.truncate-shrink.pte-shared')]), runOf(KERNEL_A, 'vm', recs.slice(0, 3))];
  twoRuns[0].run.runner = 'native';
  twoRuns[0].run.argv = ['run', '--dir', '/mnt/pmem'];
  t.match(computeFindings(twoRuns).findings.find((x) => x.id === f?.id)?.reproduce, /^daxpin vm /, 'the command of the run that recorded the case');
});

t.test('kernel summary: a case missing from one run and recorded in another of the same kernel has run', async (t) => {
  const rec = caseRecord('xfs', 'none.truncate-shrink.pte-shared');
  const first = runOf(KERNEL_A, 'r1', []);
  first.notRun = ['xfs/none.truncate-shrink.pte-shared', 'xfs/none.punch-hole.pte-shared'];
  const r = computeFindings([first, runOf(KERNEL_A, 'r2', [rec])]);
  t.match(r.kernels[0], { runIds: ['r1', 'r2'], notRun: 1, cases: 1, records: 1 });
});

t.test('findings order: violations, then those that change between kernels, then by id', async (t) => {
  const report = computeFindings([a, b]);
  const rank = (f: (typeof report.findings)[number]) =>
    [f.predicate.severity === 'violation' ? 0 : 1, f.kernels.some((k) => k.status === 'present') && f.kernels.some((k) => k.status === 'absent') ? 0 : 1];
  const keys = report.findings.map((f) => [...rank(f), f.id] as [number, number, string]);
  for (let i = 1; i < keys.length; i++) {
    const [p, q] = [keys[i - 1], keys[i]];
    t.ok(p[0] < q[0] || (p[0] === q[0] && (p[1] < q[1] || (p[1] === q[1] && p[2] < q[2]))), `${p.join(' ')} before ${q.join(' ')}`);
  }
  t.ok(keys.some((k) => k[0] === 0 && k[1] === 1) && keys.some((k) => k[0] === 0 && k[1] === 0) && keys.some((k) => k[0] === 1 && k[1] === 0) && keys.some((k) => k[0] === 1 && k[1] === 1), 'the fixtures have all four kinds');
  t.same(presenceRanges(report.findings[0]).flatMap((x) => x.kernels), [KERNEL_A, KERNEL_B]);
});

t.test('diff against a baseline on the same kernel: new, gone, rate (equal rates over other run counts are no change)', async (t) => {
  const foreign = (caseId: string, repeat: number, hit: boolean) =>
    caseRecord('xfs-dax', caseId, { repeat, op: { returnedMs: 5, blockedUntilRelease: false }, views: { canary: hit ? 'foreign' : 'original' } });
  const series = (caseId: string, hits: number, runs: number) => Array.from({ length: runs }, (_, i) => foreign(caseId, i, i < hits));
  const hung = caseRecord('xfs-dax', 'odirect-read.unlink.pte-shared', { op: { ok: false, returnedMs: null, blockedUntilRelease: true, hung: 'uninterruptible' } });
  const base = computeFindings([
    runOf(KERNEL_A, 'b', [...series('vmsplice.truncate-shrink.pte-shared', 1, 3), ...series('vmsplice.punch-hole.pte-shared-unmapped', 1, 3), hung]),
    runOf(KERNEL_B, 'b2', [hung]),
  ]);
  const now = computeFindings([
    runOf(KERNEL_A, 'n', [...series('vmsplice.truncate-shrink.pte-shared', 2, 3), ...series('vmsplice.punch-hole.pte-shared-unmapped', 2, 6), caseRecord('ext4-dax', 'none.punch-hole.pte-shared', { status: 'crashed' })]),
    runOf(KERNEL_B, 'n2', [...series('vmsplice.truncate-shrink.pte-shared', 3, 3), caseRecord('ext4-dax', 'none.truncate-shrink.pte-shared', { status: 'crashed' })]),
  ]);
  const changes = diffFindings(base, now).map((c) => [c.change, c.id, c.detail]);
  t.same(changes, [
    ['new', `crashed/ext4-dax`, `present on ${KERNEL_A} (1/1), ${KERNEL_B} (1/1)`],
    ['rate', 'foreign-after-early-return/fsdax.mapped', `${KERNEL_A}: 1/3 → 2/3`],
    ['rate', 'foreign-from/fsdax.mapped/none', `${KERNEL_A}: 1/3 → 2/3`],
    ['gone', 'hung-after-release/fsdax.evict.odirect-read/uninterruptible', `present in the baseline on ${KERNEL_A}, ${KERNEL_B}; not seen now`],
  ]);
  t.same(diffFindings(now, now), [], 'no change against itself');
  // Told which cases ran now: the hang's case did not, so it is not gone, only not run.
  const recorded = new Set(['xfs-dax/vmsplice.truncate-shrink.pte-shared', 'xfs-dax/vmsplice.punch-hole.pte-shared-unmapped']);
  t.same(
    diffFindings(base, now, recorded).filter((c) => c.id.startsWith('hung-after-release/')).map((c) => [c.change, c.detail]),
    [['not-run', `present in the baseline on ${KERNEL_A}, ${KERNEL_B}; none of its 1 case(s) ran now`]],
  );
  recorded.add('xfs-dax/odirect-read.unlink.pte-shared');
  t.same(
    diffFindings(base, now, recorded).filter((c) => c.id.startsWith('hung-after-release/')).map((c) => c.change),
    ['gone'],
    'its case ran now and did not show it',
  );
  t.equal(rateText({ hits: 2, runs: 6 }), '2/6');
});
