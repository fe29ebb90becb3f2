// What changed between two runs (two kernels, or one kernel twice). Differences in
// behaviour are changes; only a change that makes an invariant fail is a regression.

import type { ConfigRecord } from '../outcome';
import { buildGrid, reproCommand, summariseRows } from './grid';
import type { Cell, Grid, Row } from './grid';
import type { ParsedRun } from './runfile';
import { configViolations, violationKey } from '../verdict';
import type { Violation } from '../verdict';

export interface CaseChange {
  key: string;
  config: string;
  caseId: string;
  row: Row;
  before: Cell;
  after: Cell;
  /** Kernel-log signatures seen in the next run's case and not in the base run's. */
  newSignatures: string[];
  /** Violations in the next run that the base run did not have for this case. */
  newViolations: Violation[];
}

export interface ConfigChange {
  config: string;
  before: ConfigRecord;
  after: ConfigRecord;
  /** Human-readable differences: DAX verification, fsck, setup errors. */
  differences: string[];
  newViolations: Violation[];
}

export interface Regression {
  /** "config/caseId", or the config name for a config-level (fsck) regression. */
  key: string;
  violations: Violation[];
  /** How to rerun it on the next run's kernel; null for config-level regressions. */
  reproduce: string | null;
}

export interface Comparison {
  base: ParsedRun;
  next: ParsedRun;
  /** Cases whose outcome class changed, or that logged new kernel-log signatures. */
  changes: CaseChange[];
  configChanges: ConfigChange[];
  /** Planned in one run only ("config/caseId"). */
  onlyInBase: string[];
  onlyInNext: string[];
  /** Changes that make an invariant fail in next that did not fail in base. */
  regressions: Regression[];
  /** Every row of the two runs, to name groups of cases against. */
  rows: Row[];
}

export function compareRuns(base: ParsedRun, next: ParsedRun): Comparison {
  return compareGrid(buildGrid([base, next]));
}

/** Compare the first two columns of a grid (the Markdown report reuses its grid). */
export function compareGrid(grid: Grid, baseCol = 0, nextCol = 1): Comparison {
  const base = grid.columns[baseCol].run;
  const next = grid.columns[nextCol].run;
  const changes: CaseChange[] = [];
  const onlyInBase: string[] = [];
  const onlyInNext: string[] = [];
  const regressions: Regression[] = [];
  for (const row of grid.rows) {
    const before = row.cells[baseCol];
    const after = row.cells[nextCol];
    if (before === null && after === null) continue;
    if (after === null) {
      onlyInBase.push(row.key);
      continue;
    }
    if (before === null) {
      onlyInNext.push(row.key);
      continue;
    }
    const baseSignatures = new Set(before.record?.kernelLog.map((l) => l.signature) ?? []);
    const newSignatures = [...new Set(after.record?.kernelLog.map((l) => l.signature) ?? [])].filter((s) => !baseSignatures.has(s));
    const baseKeys = new Set(before.violations.map(violationKey));
    // A case that did not run in base has no measurement to regress from.
    const newViolations = before.record === null ? [] : after.violations.filter((v) => !baseKeys.has(violationKey(v)));
    if (before.outcomeClass !== after.outcomeClass || newSignatures.length > 0 || newViolations.length > 0) {
      changes.push({ key: row.key, config: row.config, caseId: row.caseId, row, before, after, newSignatures, newViolations });
    }
    if (newViolations.length > 0) {
      regressions.push({ key: row.key, violations: newViolations, reproduce: reproCommand(next, row.config, row.caseId) });
    }
  }
  const configChanges = compareConfigs(grid.columns[baseCol].configs, grid.columns[nextCol].configs);
  for (const c of configChanges) {
    if (c.newViolations.length > 0) regressions.push({ key: c.config, violations: c.newViolations, reproduce: null });
  }
  return { base, next, changes, configChanges, onlyInBase, onlyInNext, regressions, rows: grid.rows };
}

function compareConfigs(base: Map<string, ConfigRecord>, next: Map<string, ConfigRecord>): ConfigChange[] {
  const out: ConfigChange[] = [];
  for (const [name, after] of next) {
    const before = base.get(name);
    if (!before) continue;
    const differences: string[] = [];
    if (before.daxVerified !== after.daxVerified) {
      differences.push(`DAX verified: ${yesNo(before.daxVerified)} → ${yesNo(after.daxVerified)}`);
    }
    if (fsckWord(before) !== fsckWord(after)) differences.push(`fsck: ${fsckWord(before)} → ${fsckWord(after)}`);
    if ((before.error ?? '') !== (after.error ?? '')) {
      differences.push(`setup error: ${before.error ?? 'none'} → ${after.error ?? 'none'}`);
    }
    const baseKeys = new Set(configViolations(before).map(violationKey));
    const newViolations = configViolations(after).filter((v) => !baseKeys.has(violationKey(v)));
    if (differences.length > 0) out.push({ config: name, before, after, differences, newViolations });
  }
  return out;
}

function yesNo(b: boolean): string {
  return b ? 'yes' : 'no';
}

function fsckWord(c: ConfigRecord): string {
  if (c.fsck === null) return 'n/a';
  return c.fsck.ok ? 'clean' : `failed (exit ${c.fsck.exitCode})`;
}

/**
 * The measured values behind a class that a reader wants next to it: errnos,
 * how long the op took and how long after the release it returned.
 */
export function keyValues(cell: Cell): string {
  const rec = cell.record;
  if (rec === null) return 'planned, no record';
  const parts: string[] = [];
  if (rec.status !== 'done') parts.push(`status ${rec.status}`);
  if (!rec.pin.ok) parts.push(`pin ${rec.pin.errno ?? 'failed'}`);
  if (rec.op.started) {
    parts.push(rec.op.ok ? 'op ok' : `op ${rec.op.errno ?? 'failed'}`);
    if (rec.op.returnedMs !== null) parts.push(`returned at ${rec.op.returnedMs} ms`);
    if (rec.op.afterReleaseMs !== null) parts.push(`${rec.op.afterReleaseMs} ms after release`);
  }
  if (rec.op.hung === 'woken-by-signal') parts.push(`hung (${rec.op.taskState ?? '?'}) until woken by the signal`);
  else if (rec.op.hung !== null) parts.push(`hung (${rec.op.taskState ?? rec.op.hung})`);
  if (rec.pmd !== null && rec.mapping.startsWith('pmd')) parts.push(rec.pmd ? 'PMD fault seen' : 'no PMD fault');
  return parts.join(', ');
}

/** Markdown, readable as plain text in a terminal. */
export function renderComparison(cmp: Comparison): string {
  const { base, next } = cmp;
  const out: string[] = [];
  out.push(`# daxpin compare: ${base.run.kernel} → ${next.run.kernel}`, '');
  out.push(`- base: ${runLine(base)}`, `- next: ${runLine(next)}`, '');
  if (cmp.regressions.length === 0) {
    out.push('No regressions: no invariant fails in next that held in base.', '');
  } else {
    out.push(`## ${cmp.regressions.length} regression(s): an invariant fails in next that held in base`, '');
    for (const r of cmp.regressions) {
      out.push(`- ${code(r.key)}: ${r.violations.map((v) => `${v.kind} (${v.detail})`).join('; ')}`);
      if (r.reproduce) out.push(`  - reproduce: ${code(r.reproduce)}`);
    }
    out.push('');
  }
  out.push(...renderChanges(cmp));
  return out.join('\n');
}

/** The change sections alone, shared with the Markdown report; `h` is their heading prefix. */
export function renderChanges(cmp: Comparison, h = '##'): string[] {
  const out: string[] = [];
  const classChanges = cmp.changes.filter((c) => c.before.outcomeClass !== c.after.outcomeClass);
  if (classChanges.length > 0) {
    // Changes grouped by transition: a kernel that changes one errno for a whole
    // pin method shows as one line, not dozens.
    const groups = new Map<string, CaseChange[]>();
    for (const c of classChanges) {
      const key = `${cellSummary(c.before, false)}\t${cellSummary(c.after, false)}`;
      groups.set(key, [...(groups.get(key) ?? []), c]);
    }
    out.push(`${h} Outcome changes (${classChanges.length} cases)`, '');
    out.push(`| cases | ${mdCell(cmp.base.run.kernel)} | ${mdCell(cmp.next.run.kernel)} |`, '|---|---|---|');
    for (const members of groups.values()) {
      const [one] = members;
      const cases = members.length === 1 ? code(one.key) : summariseRows(members.map((c) => c.row), cmp.rows).map(code).join(' ');
      const single = members.length === 1;
      out.push(`| ${mdCell(cases)} | ${mdCell(cellSummary(one.before, single))} | ${mdCell(cellSummary(one.after, single))} |`);
    }
    out.push('');
  }
  const withSignatures = cmp.changes.filter((c) => c.newSignatures.length > 0);
  if (withSignatures.length > 0) {
    out.push(`${h} New kernel-log signatures (${withSignatures.length} cases)`, '');
    for (const c of withSignatures) {
      out.push(`- ${code(c.key)}:`, ...c.newSignatures.map((s) => `  - ${code(s)}`));
    }
    out.push('');
  }
  if (cmp.configChanges.length > 0) {
    out.push(`${h} Config changes`, '');
    for (const c of cmp.configChanges) out.push(`- ${c.config}: ${c.differences.join('; ')}`);
    out.push('');
  }
  for (const [title, keys] of [
    ['Only in base', cmp.onlyInBase],
    ['Only in next', cmp.onlyInNext],
  ] as const) {
    if (keys.length > 0) out.push(`${h} ${title} (${keys.length})`, '', ...keys.map((k) => `- ${code(k)}`), '');
  }
  if (out.length === 0) out.push('No outcome changes.', '');
  return out;
}

function runLine(p: ParsedRun): string {
  return `${p.source}: kernel ${p.run.kernel}, ${p.run.runner}${p.run.accel ? `/${p.run.accel}` : ''}, run ${p.run.runId}, ${p.cases.length} cases`;
}

/** A cell's class and violations, with its measured key values when `withValues`. */
function cellSummary(cell: Cell, withValues: boolean): string {
  const values = withValues ? keyValues(cell) : '';
  const marks = [...new Set(cell.violations.map((v) => v.kind))].join(', ');
  return `${code(cell.outcomeClass)}${values ? ` (${values})` : ''}${marks ? ` **${marks}**` : ''}`;
}

/** Markdown put inside a table cell: pipes escaped, one line. */
export function mdCell(markdown: string): string {
  return markdown.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** A code span holding arbitrary text (backticks cannot be escaped inside one). */
export function code(text: string): string {
  return `\`${text.replace(/`/g, "'").replace(/\s*\n\s*/g, ' ')}\``;
}
