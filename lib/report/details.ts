// The details of one cell, as shown on demand in HTML and attached to the CI
// formats' test results: every measured value a reader needs to judge the class.

import type { HungState, Views } from '../outcome';
import { reproCommand } from './grid';
import type { Cell, CellVerdict, Row } from './grid';
import type { ParsedRun } from './runfile';

/** Lines of a crashed case's console kept in reports: the panic and what led to it. */
const CONSOLE_TAIL_LINES = 60;

export interface CellDetails {
  key: string;
  kernel: string;
  outcomeClass: string;
  verdict: CellVerdict;
  violations: string[];
  reproduce: string;
  /** Absent for a planned case that did not run. */
  measured?: {
    status: string;
    error?: string;
    daxVerified: boolean;
    pmd: boolean | null;
    map: string;
    pin: string;
    op: string;
    returnedMs: number | null;
    blockedUntilRelease: boolean;
    afterReleaseMs: number | null;
    hung: HungState;
    taskState: string | null;
    stack: string[] | null;
    release: string;
    views: Views;
    sigbus: string[];
    kernelLog: string[];
    tainted: string;
    holdMs: number;
    durationMs: number;
    startedAt: string;
    console?: string;
  };
}

function result(r: { ok: boolean; errno: string | null }): string {
  return r.ok ? 'ok' : (r.errno ?? 'failed');
}

export function cellDetails(cell: Cell, parsed: ParsedRun, row: Row): CellDetails {
  const base = {
    key: row.key,
    kernel: parsed.run.kernel,
    outcomeClass: cell.outcomeClass,
    verdict: cell.verdict,
    violations: cell.violations.map((v) => `${v.kind}: ${v.detail}`),
    reproduce: reproCommand(parsed, row.config, row.caseId),
  };
  const rec = cell.record;
  if (rec === null) return base;
  return {
    ...base,
    measured: {
      status: rec.status,
      error: rec.error,
      daxVerified: rec.daxVerified,
      pmd: rec.pmd,
      map: result(rec.map),
      pin: result(rec.pin),
      op: rec.op.started ? result(rec.op) : 'not started',
      returnedMs: rec.op.returnedMs,
      blockedUntilRelease: rec.op.blockedUntilRelease,
      afterReleaseMs: rec.op.afterReleaseMs,
      hung: rec.op.hung,
      taskState: rec.op.taskState,
      stack: rec.op.stack,
      release: `${result(rec.release)}${rec.release.ms === null ? '' : ` at ${rec.release.ms} ms`}`,
      views: rec.views,
      sigbus: rec.sigbus,
      kernelLog: rec.kernelLog.map((l) => `<${l.level}> ${l.signature}`),
      tainted: `${rec.taintedBefore ?? '?'} → ${rec.taintedAfter ?? '?'}`,
      holdMs: rec.holdMs,
      durationMs: rec.durationMs,
      startedAt: rec.startedAt,
      console: rec.console?.split('\n').slice(-CONSOLE_TAIL_LINES).join('\n'),
    },
  };
}

/** The details as plain text, one "name: value" per line; multi-line values indented. */
export function detailsText(d: CellDetails): string {
  return [`case: ${d.key}`, `kernel: ${d.kernel}`, ...detailsBody(d), `reproduce: ${d.reproduce}`].join('\n');
}

/** The lines between the case's name and its reproducer: what was measured. */
export function detailsBody(d: CellDetails): string[] {
  const out = [`outcome: ${d.outcomeClass}`, `verdict: ${d.verdict}`];
  for (const v of d.violations) out.push(`violation: ${v}`);
  const m = d.measured;
  if (m) {
    out.push(`status: ${m.status}${m.error ? ` (${m.error})` : ''}`);
    out.push(`dax verified: ${m.daxVerified}, pmd fault: ${m.pmd === null ? 'not observable' : m.pmd}`);
    out.push(`map: ${m.map}, pin: ${m.pin}, op: ${m.op}, release: ${m.release}`);
    out.push(
      `op returned: ${m.returnedMs === null ? 'never' : `${m.returnedMs} ms`}` +
        `${m.blockedUntilRelease ? `, blocked until release (+${m.afterReleaseMs ?? '?'} ms)` : ''}` +
        `${m.hung ? `, hung ${m.hung} (state ${m.taskState ?? '?'})` : ''}`,
    );
    if (m.stack) out.push('stack:', ...m.stack.map((l) => `  ${l}`));
    out.push(`views: ${Object.entries(m.views).map(([k, v]) => `${k}=${v}`).join(' ')}`);
    if (m.sigbus.length > 0) out.push(`sigbus: ${m.sigbus.join(', ')}`);
    out.push(`tainted: ${m.tainted}, hold ${m.holdMs} ms`, `took ${m.durationMs} ms, started ${m.startedAt}`);
    if (m.kernelLog.length > 0) out.push('kernel log:', ...m.kernelLog.map((l) => `  ${l}`));
    if (m.console) out.push('console:', ...m.console.split('\n').map((l) => `  ${l}`));
  } else {
    out.push('planned but not run');
  }
  return out;
}
