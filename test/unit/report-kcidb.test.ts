// KCIDB output of a multi-kernel run, validated against KernelCI's own schema (kcidb-io v5.3,
// Draft-07 with formats, vendored in lib/report/kcidb-io/), and the status mapping.

import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { kcidbReport, kcidbStatus } from '../../lib/report/kcidb';
import { renderReport } from '../../lib/report/render';
import { parseRunText } from '../../lib/report/runfile';
import { KERNEL_A, PLANTED, RUN_A, plannedKeys, runAText, runBText } from '../fixtures/runs';
import { KCIDB_SCHEMA_PATH, kcidbErrors, kcidbValidator } from '../helpers/kcidb';

/** `daxpin vm --kernel 6.1 --kernel 7.3`: one JSONL per kernel, run ids `<runId>-<release>`. */
function vmKernelRun(release: string): string {
  return runAText().replaceAll(RUN_A, `vm20250103-${release}`).replaceAll(KERNEL_A, release).replace('"runner":"native"', '"runner":"vm","accel":"tcg"');
}

const runs = [
  parseRunText(runAText(), 'a.jsonl'),
  parseRunText(runBText(), 'b.jsonl'),
  parseRunText(vmKernelRun('6.1.0-50-amd64'), 'vm/6.1.jsonl'),
  parseRunText(vmKernelRun('7.3.4+deb14-amd64'), 'vm/7.3.jsonl'),
];

t.test('a multi-kernel run validates against the official KCIDB v5.3 schema', async (t) => {
  const validate = kcidbValidator();
  const report = JSON.parse(renderReport(runs, 'kcidb'));
  t.ok(validate(report), kcidbErrors(validate));
  t.same(report.version, { major: 5, minor: 3 });
  t.same(
    report.checkouts.map((c: { id: string }) => c.id),
    ['daxpin:runA-20250101', 'daxpin:runB-20250102', 'daxpin:vm20250103-6.1.0-50-amd64', 'daxpin:vm20250103-7.3.4+deb14-amd64'],
  );
  t.equal(report.tests.length, plannedKeys().length * 4 + 5 + 3 + 3, 'every planned case of the four kernels, plus their config checks');
  t.equal(new Set(report.tests.map((x: { id: string }) => x.id)).size, report.tests.length, 'test ids are unique');
  for (const b of report.builds) t.ok(report.checkouts.some((c: { id: string }) => c.id === b.checkout_id), `${b.id} belongs to a checkout`);
  for (const x of report.tests) {
    if (!report.builds.some((b: { id: string }) => b.id === x.build_id)) t.fail(`${x.id} has no build`);
  }
});

t.test('statuses, paths and provenance in the records', async (t) => {
  const report = kcidbReport(runs);
  const byPath = (run: string, p: string) => report.tests.find((x) => x.path === p && String(x.id).startsWith(`daxpin:${run}:`)) as Record<string, any>;
  t.equal(byPath('runB-20250102', 'daxpin.xfs_dax.vmsplice.truncate_shrink.pte_shared').status, 'FAIL');
  t.equal(byPath('runB-20250102', 'daxpin.ext4_dax.vmsplice.punch_hole.pte_shared').status, 'FAIL', 'a crash is FAIL: the tested kernel is faulty');
  t.match(byPath('runB-20250102', 'daxpin.ext4_dax.vmsplice.punch_hole.pte_shared').log_excerpt, 'Kernel panic - not syncing');
  t.equal(byPath('runB-20250102', 'daxpin.ext4_dax.vmsplice.punch_hole.pmd_shared').status, 'MISS');
  t.equal(byPath('runA-20250101', 'daxpin.xfs.uring_fixed.truncate_shrink.pte_shared').status, 'ERROR');
  t.equal(byPath('runA-20250101', 'daxpin.xfs.none.truncate_shrink.pte_sync').status, 'SKIP');
  t.equal(byPath('runA-20250101', 'daxpin.xfs_dax.uring_fixed.punch_hole.pte_shared').status, 'PASS');
  t.equal(byPath('runB-20250102', 'daxpin.xfs.fsck').status, 'FAIL');
  t.equal(byPath('runA-20250101', 'daxpin.xfs.fsck').status, 'PASS');
  const foreign = byPath('runB-20250102', 'daxpin.xfs_dax.vmsplice.truncate_shrink.pte_shared');
  t.same(foreign.misc.violations.map((v: { kind: string }) => v.kind), ['foreign-data', 'foreign-data'], `${PLANTED.foreign} (pipe and canary): the violations travel in misc`);
  const [buildA, buildB] = report.builds as Record<string, any>[];
  t.match(buildA.misc, { runner: 'native', argv: ['daxpin', 'run', '--dir', '/mnt/daxpin', '--matrix', 'smoke'], host: 'testhost', hold_ms: 500, settle_ms: 2000, finished: true });
  t.match(buildB.misc, { runner: 'vm', accel: 'tcg', finished: false }, 'B was killed before its end record');
  t.equal(report.checkouts[0].origin_tests_finish_time, '2025-01-01T11:00:00.000Z');
  t.notOk('origin_tests_finish_time' in report.checkouts[1], 'no end record, no finish time');
});

t.test('the schema does refuse what KCIDB would refuse (the check can fail)', async (t) => {
  const validate = kcidbValidator();
  const report = kcidbReport(runs.slice(0, 1)) as unknown as Record<string, any>;
  t.ok(validate(report), kcidbErrors(validate));
  const test0 = report.tests[0];
  const bad: [string, unknown][] = [
    ['a bad status', { ...report, tests: [{ ...test0, status: 'BROKEN' }] }],
    ['a bad path', { ...report, tests: [{ ...test0, path: 'daxpin.xfs dax' }] }],
    ['a null', { ...report, tests: [{ ...test0, start_time: null }] }],
    ['a time without a zone', { ...report, tests: [{ ...test0, start_time: '2025-01-01T10:00:00' }] }],
    ['an id without an origin', { ...report, tests: [{ ...test0, id: 'runA:x' }] }],
    ['an unknown field', { ...report, tests: [{ ...test0, repeat: 1 }] }],
    ['a log excerpt over 16 KiB', { ...report, tests: [{ ...test0, log_excerpt: 'x'.repeat(16385) }] }],
    ['schema major 4', { ...report, version: { major: 4, minor: 3 } }],
  ];
  for (const [why, doc] of bad) t.notOk(validate(doc), why);
  t.same(kcidbReport([]).tests, []);
  t.ok(validate(kcidbReport([])), 'an empty report is valid too');
});

t.test('kcidb status mapping covers every cell verdict', async (t) => {
  t.same(
    (['crashed', 'violation', 'error', 'not-run', 'map-refused', 'refused', 'waited', 'ok'] as const).map(kcidbStatus),
    ['FAIL', 'FAIL', 'ERROR', 'MISS', 'SKIP', 'PASS', 'PASS', 'PASS'],
  );
});

const SHARED_SCHEMA = path.resolve(KCIDB_SCHEMA_PATH, '../../../../../shared/kcidb/v5.3.schema.json');

t.test('the vendored schema is the one CI keeps beside the repository, when it is there', { skip: fs.existsSync(SHARED_SCHEMA) ? false : `${SHARED_SCHEMA} is not beside this clone` }, async (t) => {
  t.same(JSON.parse(fs.readFileSync(KCIDB_SCHEMA_PATH, 'utf8')), JSON.parse(fs.readFileSync(SHARED_SCHEMA, 'utf8')));
});
