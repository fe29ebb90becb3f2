// A Markdown summary fit for a regression mail: what failed and how to rerun it
// first, then what changed between kernels, then a compact table per config.

import { findConfig } from '../cases/matrix';
import type { ConfigRecord } from '../outcome';
import { code, compareGrid, mdCell, renderChanges } from './compare';
import type { Deviation } from './expectations';
import { buildGrid, reproCommand, summariseRows } from './grid';
import type { Cell, Grid, Row } from './grid';
import { findingsRun } from './runfile';
import type { ParsedRun } from './runfile';
import { computeFindings, rateText } from '../findings/findings';
import { configViolations } from '../verdict';

export interface MarkdownOptions {
  /** Deviations from an expectations file, listed after the violations. */
  deviations?: Deviation[];
}

export function renderMarkdown(runs: ParsedRun[], opts: MarkdownOptions = {}): string {
  const grid = buildGrid(runs);
  const out: string[] = ['# daxpin report', ''];
  out.push(summaryLine(grid), '');
  const warnings = runs.flatMap((r) => r.warnings);
  if (warnings.length > 0) out.push(...warnings.map((w) => `> note: ${w}`), '');
  out.push(...findingsSection(runs), ...kernelsSection(grid), ...configsSection(grid), ...violationsSection(grid));
  if (opts.deviations) out.push(...deviationsSection(opts.deviations));
  if (grid.columns.length > 1) out.push(...changesSection(grid));
  out.push(...configTables(grid));
  return out.join('\n');
}

/** Findings × kernels: status and rate per kernel, the reproducer of each (lib/findings). */
function findingsSection(runs: ParsedRun[]): string[] {
  const report = computeFindings(runs.map(findingsRun));
  const present = report.findings.filter((f) => f.kernels.some((k) => k.status === 'present'));
  const out = [`## Findings (${present.length})`, ''];
  if (present.length === 0) return [...out, 'None.', ''];
  out.push(`| finding | kind | cases | ${report.kernels.map((k) => mdCell(k.kernel)).join(' | ')} | reproduce |`, `|---|---|---|${report.kernels.map(() => '---|').join('')}---|`);
  for (const f of present) {
    const cells = f.kernels.map((k) => `${k.status}${k.runs > 0 ? ` ${rateText(k)}` : ''}`);
    out.push(`| ${[code(f.id) + (f.flaky ? ' (flaky)' : ''), f.predicate.severity, String(f.cases.length), ...cells, code(f.reproduce)].map(mdCell).join(' | ')} |`);
  }
  return [...out, ''];
}

function summaryLine(grid: Grid): string {
  const cells = grid.rows.flatMap((r) => r.cells).filter((c): c is Cell => c !== null);
  const count = (pred: (c: Cell) => boolean): number => cells.filter(pred).length;
  return (
    `${grid.columns.length} run(s), ${grid.rows.length} cases, ` +
    `${count((c) => c.violations.length > 0)} results (case × run) with an invariant violation, ` +
    `${count((c) => c.verdict === 'crashed')} crashed, ${count((c) => c.verdict === 'error')} errors, ` +
    `${count((c) => c.verdict === 'not-run')} planned but not run.`
  );
}

function kernelsSection(grid: Grid): string[] {
  const out = ['## Kernels', '', '| kernel | runner | host | run | started | cases | not run | finished |', '|---|---|---|---|---|---|---|---|'];
  grid.columns.forEach((col, i) => {
    const { run, end } = col.run;
    const cells = grid.rows.map((r) => r.cells[i]).filter((c): c is Cell => c !== null);
    const notRun = cells.filter((c) => c.verdict === 'not-run').length;
    const finished = end === null ? 'no (killed?)' : end.interrupted ? 'interrupted' : end.error ? `stopped: ${end.error}` : 'yes';
    const runner = run.accel ? `${run.runner}/${run.accel}` : run.runner;
    out.push(
      `| ${[code(col.label), runner, run.host, code(run.runId), run.startedAt, String(cells.length - notRun), String(notRun), finished].map(mdCell).join(' | ')} |`,
    );
  });
  return [...out, ''];
}

/** A config's DAX mode as measured, flagged when a DAX config turned out not to be DAX. */
function daxWord(name: string, rec: ConfigRecord | undefined): string {
  if (!rec) return '—';
  if (rec.error) return `setup failed: ${rec.error}`;
  const wantsDax = (findConfig(name)?.dax ?? 'off') !== 'off';
  const dax = rec.daxVerified ? 'DAX verified' : wantsDax ? '**DAX NOT verified**' : 'page cache';
  const fsck = rec.fsck === null ? '' : rec.fsck.ok ? ', fsck clean' : `, **fsck failed** (exit ${rec.fsck.exitCode})`;
  return dax + fsck;
}

function configsSection(grid: Grid): string[] {
  const out = ['## Configs', '', `| config | ${grid.columns.map((c) => mdCell(c.label)).join(' | ')} |`, `|---|${grid.columns.map(() => '---|').join('')}`];
  for (const name of grid.configs) {
    out.push(`| ${name} | ${grid.columns.map((c) => mdCell(daxWord(name, c.configs.get(name)))).join(' | ')} |`);
  }
  return [...out, ''];
}

function violationsSection(grid: Grid): string[] {
  const items: string[] = [];
  for (const col of grid.columns) {
    for (const rec of col.configs.values()) {
      for (const v of configViolations(rec)) items.push(`- **${col.label}** ${code(rec.config)}: ${v.kind}: ${code(v.detail)}`);
    }
  }
  for (const row of grid.rows) {
    row.cells.forEach((cell, i) => {
      if (!cell || cell.violations.length === 0) return;
      const col = grid.columns[i];
      items.push(`- **${col.label}** ${code(row.key)} (${code(cell.outcomeClass)})`);
      for (const v of cell.violations) items.push(`  - ${v.kind}: ${code(v.detail)}`);
      items.push(`  - reproduce: ${code(reproCommand(col.run, row.config, row.caseId))}`);
    });
  }
  const head = `## Invariant violations (${items.filter((l) => l.startsWith('- ')).length})`;
  return [head, '', ...(items.length > 0 ? items : ['None.']), ''];
}

function deviationsSection(deviations: Deviation[]): string[] {
  const out = [`## Deviations from expectations (${deviations.length})`, ''];
  if (deviations.length === 0) return [...out, 'None: every measured case matched its expectation.', ''];
  out.push('| kernel | case | expected | measured | note |', '|---|---|---|---|---|');
  for (const d of deviations) {
    out.push(`| ${[code(d.kernel), code(d.key), code(d.expected), code(d.actual), d.note ?? ''].map(mdCell).join(' | ')} |`);
  }
  return [...out, ''];
}

function changesSection(grid: Grid): string[] {
  const out = ['## What changed between kernels', ''];
  for (let i = 1; i < grid.columns.length; i++) {
    const cmp = compareGrid(grid, i - 1, i);
    out.push(`### ${grid.columns[i - 1].label} → ${grid.columns[i].label}`, '');
    if (cmp.regressions.length > 0) {
      out.push(`**${cmp.regressions.length} regression(s)**: ${cmp.regressions.map((r) => code(r.key)).join(', ')}`, '');
    }
    out.push(...renderChanges(cmp, '####'));
  }
  return out;
}

/**
 * Per config, cases grouped by their outcome on every kernel: one table line per
 * distinct outcome vector, so a matrix of hundreds of cases fits a mail.
 */
function configTables(grid: Grid): string[] {
  const out = [
    '## Outcomes per config',
    '',
    'One line per outcome seen on every kernel; `*` stands for all of the config\'s values, and "(n of m)" says the line covers n of the m combinations it names.',
    '',
  ];
  for (const config of grid.configs) {
    const rows = grid.rows.filter((r) => r.config === config);
    const groups = new Map<string, Row[]>();
    for (const row of rows) {
      const key = row.cells.map(cellToken).join('\t');
      groups.set(key, [...(groups.get(key) ?? []), row]);
    }
    out.push(`### ${config}`, '');
    out.push(`| cases | ${grid.columns.map((c) => mdCell(c.label)).join(' | ')} |`, `|---|${grid.columns.map(() => '---|').join('')}`);
    for (const [key, members] of groups) {
      out.push(`| ${[summariseRows(members, rows).map(code).join(' '), ...key.split('\t')].map(mdCell).join(' | ')} |`);
    }
    out.push('');
  }
  return out;
}

function cellToken(cell: Cell | null): string {
  if (cell === null) return '—';
  return cell.violations.length > 0 ? `${code(cell.outcomeClass)} **FAIL**` : code(cell.outcomeClass);
}
