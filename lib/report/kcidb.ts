// KCIDB JSON (KernelCI common reporting, I/O schema v5.3; the tests validate it against
// kcidb-io's own schema, vendored in kcidb-io/): one checkout and one
// build per run (daxpin tests released kernels, it builds nothing, so they carry
// only ids, times and the kernel release), one test per case and per config check.
//
// Status mapping (KCIDB's own definitions in parentheses):
//   FAIL   an invariant violation, a kernel crash included ("reported the tested code as faulty")
//   ERROR  daxpin could not set the case up, or abandoned it without seeing a hang
//          ("didn't complete due to a failure in its code")
//   MISS   planned but no record: the run was killed or ended early ("didn't run due to a
//          failure in the test harness")
//   SKIP   the mapping was refused: the case does not apply to this config ("not applicable")
//   PASS   everything else: the case ran and every invariant held. Behaviour that is only
//          recorded (a refused pin or op, an op that waited for the release) is PASS too,
//          with the outcome class in `comment` and `misc`; DONE is not used because each
//          case does judge the tested code, by its invariants.

import { cellDetails, detailsText } from './details';
import { buildGrid, suitesOf } from './grid';
import type { CellVerdict } from './grid';
import type { ParsedRun } from './runfile';
import { configChecks } from '../verdict';

export const KCIDB_VERSION = { major: 5, minor: 3 } as const;
const ORIGIN = 'daxpin';
/** KCIDB caps log excerpts at 16 KiB. */
const LOG_EXCERPT_MAX = 16384;

export type KcidbStatus = 'FAIL' | 'ERROR' | 'MISS' | 'PASS' | 'DONE' | 'SKIP';

export function kcidbStatus(verdict: CellVerdict): KcidbStatus {
  switch (verdict) {
    case 'crashed':
    case 'violation':
      return 'FAIL';
    case 'error':
      return 'ERROR';
    case 'not-run':
      return 'MISS';
    case 'map-refused':
    case 'unsupported':
      return 'SKIP';
    default:
      return 'PASS';
  }
}

/** A test path segment: KCIDB allows [A-Za-z0-9_-]; daxpin uses '_' so segments read as identifiers. */
function segment(name: string): string {
  return name.replace(/[^A-Za-z0-9_]/g, '_');
}

function testPath(config: string, caseIdOrCheck: string): string {
  return [ORIGIN, config, ...caseIdOrCheck.split('.')].map(segment).join('.');
}

function logExcerpt(text: string): string {
  const clean = text.replace(/\0/g, '');
  return clean.length <= LOG_EXCERPT_MAX ? clean : clean.slice(clean.length - LOG_EXCERPT_MAX);
}

export interface KcidbReport {
  version: { major: number; minor: number };
  checkouts: Record<string, unknown>[];
  builds: Record<string, unknown>[];
  tests: Record<string, unknown>[];
}

export function kcidbReport(runs: ParsedRun[]): KcidbReport {
  const grid = buildGrid(runs);
  const report: KcidbReport = { version: { ...KCIDB_VERSION }, checkouts: [], builds: [], tests: [] };
  for (const { run, end } of runs) {
    const id = `${ORIGIN}:${run.runId}`;
    report.checkouts.push({
      id,
      origin: ORIGIN,
      comment: `kernel ${run.kernel}`,
      start_time: run.startedAt,
      ...(end ? { origin_tests_finish_time: end.finishedAt } : {}),
      misc: { kernel_release: run.kernel },
    });
    report.builds.push({
      id,
      checkout_id: id,
      origin: ORIGIN,
      comment: `kernel ${run.kernel} (released build, not built by daxpin)`,
      start_time: run.startedAt,
      // Provenance: how the run was made, so a reader can repeat it.
      misc: {
        kernel_release: run.kernel,
        runner: run.runner,
        accel: run.accel,
        argv: run.argv,
        host: run.host,
        jsonl_schema: run.schema,
        hold_ms: run.holdMs,
        settle_ms: run.settleMs,
        planned: run.planned.length,
        finished: end !== null && !end.interrupted && end.error === undefined,
        ...(end?.error !== undefined ? { stopped: end.error } : {}),
      },
    });
  }
  for (const suite of suitesOf(grid)) {
    const { run } = suite.column.run;
    const buildId = `${ORIGIN}:${run.runId}`;
    const environment = { comment: `${run.host} (${run.runner}${run.accel ? `/${run.accel}` : ''})`, misc: { host: run.host } };
    for (const { row, cell } of suite.entries) {
      const rec = cell.record;
      report.tests.push({
        id: `${buildId}:${row.key}`,
        build_id: buildId,
        origin: ORIGIN,
        path: testPath(row.config, row.caseId),
        status: kcidbStatus(cell.verdict),
        comment: cell.outcomeClass,
        environment,
        ...(rec ? { start_time: rec.startedAt, duration: rec.durationMs / 1000 } : {}),
        log_excerpt: logExcerpt(detailsText(cellDetails(cell, suite.column.run, row))),
        misc: {
          config: row.config,
          case_id: row.caseId,
          outcome_class: cell.outcomeClass,
          verdict: cell.verdict,
          violations: cell.violations.map((v) => ({ kind: v.kind, detail: v.detail })),
          dax_verified: rec?.daxVerified,
        },
      });
    }
    for (const check of suite.configRecord ? configChecks(suite.configRecord) : []) {
      report.tests.push({
        id: `${buildId}:${suite.config}:${check.name}`,
        build_id: buildId,
        origin: ORIGIN,
        path: testPath(suite.config, check.name),
        status: check.verdict === 'violation' ? 'FAIL' : check.verdict === 'error' ? 'ERROR' : 'PASS',
        comment: check.detail,
        environment,
        log_excerpt: logExcerpt(check.name === 'fsck' ? (suite.configRecord?.fsck?.output ?? check.detail) : check.detail),
        misc: { config: suite.config },
      });
    }
  }
  return report;
}

export function renderKcidb(runs: ParsedRun[]): string {
  return `${JSON.stringify(kcidbReport(runs), null, 1)}\n`;
}
