// The cases × runs grid every report format is drawn from: one row per
// "config/caseId" seen in any run, one column per run, each cell classified once.

import { CONFIGS, LAYOUT_OPS, MAPPINGS, PIN_METHODS } from '../cases/matrix';
import { planKey } from '../outcome';
import type { CaseRecord, ConfigRecord } from '../outcome';
import { notRunKeys } from './runfile';
import type { ParsedRun } from './runfile';
import { invariantViolations, outcomeClass, verdictOf } from '../verdict';
import { shellWord, singleQuote } from '../host/shell';
import type { Verdict, Violation } from '../verdict';

/** A cell's verdict; 'not-run' is a planned case that never produced a record. */
export type CellVerdict = Verdict | 'not-run';

export interface Cell {
  /** null for a planned case that did not run. */
  record: CaseRecord | null;
  outcomeClass: string;
  verdict: CellVerdict;
  violations: Violation[];
}

export interface Row {
  key: string;
  config: string;
  caseId: string;
  pinMethod: string;
  layoutOp: string;
  mapping: string;
  /** One per column; null when the case was not planned in that run. */
  cells: (Cell | null)[];
}

export interface Column {
  run: ParsedRun;
  /** The kernel release, made unique with runner and run id when two runs share a kernel. */
  label: string;
  /** The run's config records by config name. */
  configs: Map<string, ConfigRecord>;
}

export interface Grid {
  columns: Column[];
  rows: Row[];
  /** Config names in matrix order. */
  configs: string[];
}

function cellOf(record: CaseRecord): Cell {
  const violations = invariantViolations(record);
  return { record, outcomeClass: outcomeClass(record), verdict: verdictOf(record, violations), violations };
}

const NOT_RUN: Cell = { record: null, outcomeClass: 'not-run', verdict: 'not-run', violations: [] };

export function buildGrid(runs: ParsedRun[]): Grid {
  const rows = new Map<string, Row>();
  const rowFor = (config: string, caseId: string, parts: { pinMethod: string; layoutOp: string; mapping: string }): Row => {
    const key = planKey(config, caseId);
    let row = rows.get(key);
    if (!row) {
      row = { key, config, caseId, ...parts, cells: runs.map(() => null) };
      rows.set(key, row);
    }
    return row;
  };
  runs.forEach((parsed, col) => {
    for (const rec of parsed.cases) {
      rowFor(rec.config, rec.caseId, { pinMethod: rec.pinMethod, layoutOp: rec.layoutOp, mapping: rec.mapping }).cells[col] = cellOf(rec);
    }
    for (const key of notRunKeys(parsed)) {
      const slash = key.indexOf('/');
      const config = key.slice(0, slash);
      const caseId = key.slice(slash + 1);
      rowFor(config, caseId, caseIdParts(caseId)).cells[col] = NOT_RUN;
    }
  });
  const sorted = [...rows.values()].sort(compareRows);
  const labels = columnLabels(runs);
  return {
    columns: runs.map((run, i) => ({ run, label: labels[i], configs: new Map(run.configs.map((c) => [c.config, c])) })),
    rows: sorted,
    configs: [...new Set([...sorted.map((r) => r.config), ...runs.flatMap((r) => r.configs.map((c) => c.config))])].sort(
      (a, b) => rank(ORDER.config, a) - rank(ORDER.config, b) || a.localeCompare(b),
    ),
  };
}

/** A planned case id is "pinMethod.layoutOp.mapping"; names themselves hold no dots. */
function caseIdParts(caseId: string): { pinMethod: string; layoutOp: string; mapping: string } {
  const [pinMethod = caseId, layoutOp = '', mapping = ''] = caseId.split('.');
  return { pinMethod, layoutOp, mapping };
}

function columnLabels(runs: ParsedRun[]): string[] {
  return runs.map((r) => {
    const shared = runs.filter((o) => o.run.kernel === r.run.kernel).length > 1;
    return shared ? `${r.run.kernel} (${r.run.runner} ${r.run.runId})` : r.run.kernel;
  });
}

// Rows follow the matrix tables' order so reports read like the matrix; names
// that the current tables do not know (older or newer runs) sort after, by name.
const ORDER = {
  config: CONFIGS.map((c) => c.name),
  pinMethod: PIN_METHODS.map((p) => p.name),
  layoutOp: LAYOUT_OPS.map((o) => o.name),
  mapping: MAPPINGS.map((m) => m.name),
};

function rank(names: string[], name: string): number {
  const i = names.indexOf(name);
  return i === -1 ? names.length : i;
}

function compareRows(a: Row, b: Row): number {
  for (const field of ['config', 'pinMethod', 'layoutOp', 'mapping'] as const) {
    const d = rank(ORDER[field], a[field]) - rank(ORDER[field], b[field]) || a[field].localeCompare(b[field]);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * The one-line command that reproduces one case the way its run was made:
 * `daxpin run --dir …` for native runs (the directory from the run's own command
 * line when it has one), `daxpin vm --kernel <release>` for vm runs.
 */
export function reproCommand(parsed: ParsedRun, config: string, caseId: string): string {
  const { run } = parsed;
  const head =
    run.runner === 'vm' ? ['daxpin', 'vm', '--kernel', run.kernel] : ['daxpin', 'run', '--dir', dirArg(run.argv) ?? '<mnt>'];
  // The case id is always quoted: --cases takes globs, and a pasted id should stay one.
  return [...[...head, '--config', config, '--cases'].map(shellQuote), singleQuote(caseId)].join(' ');
}

function dirArg(argv: string[]): string | undefined {
  const i = argv.indexOf('--dir');
  if (i !== -1 && i + 1 < argv.length) return argv[i + 1];
  return argv.find((a) => a.startsWith('--dir='))?.slice('--dir='.length);
}

function shellQuote(word: string): string {
  return word === '<mnt>' ? word : shellWord(word);
}

/** One run × one config: the unit the CI formats group results by. */
export interface Suite {
  column: Column;
  columnIndex: number;
  config: string;
  configRecord: ConfigRecord | undefined;
  /** Rows planned in this run for this config, each with its non-null cell. */
  entries: { row: Row; cell: Cell }[];
}

export function suitesOf(grid: Grid): Suite[] {
  const out: Suite[] = [];
  grid.columns.forEach((column, columnIndex) => {
    for (const config of grid.configs) {
      const entries = grid.rows
        .filter((row) => row.config === config && row.cells[columnIndex] !== null)
        .map((row) => ({ row, cell: row.cells[columnIndex] as Cell }));
      const configRecord = column.configs.get(config);
      if (entries.length > 0 || configRecord) out.push({ column, columnIndex, config, configRecord, entries });
    }
  });
  return out;
}

/**
 * Name a set of rows compactly, per config: "xfs-dax/{none,vmsplice}.*.pte-shared (5 of 6)".
 * Each dimension lists the values the rows cover, or '*' when they cover every
 * value that config has among `all`; the count says when the product over-covers.
 */
export function summariseRows(members: Row[], all: Row[]): string[] {
  const out: string[] = [];
  for (const config of [...new Set(members.map((r) => r.config))]) {
    const mine = members.filter((r) => r.config === config);
    const theirs = all.filter((r) => r.config === config);
    let product = 1;
    const dims = (['pinMethod', 'layoutOp', 'mapping'] as const).map((field) => {
      const values = [...new Set(mine.map((r) => r[field]))];
      product *= values.length;
      if (values.length > 1 && values.length === new Set(theirs.map((r) => r[field])).size) return '*';
      return values.length === 1 ? values[0] : `{${values.join(',')}}`;
    });
    const count = mine.length === 1 ? '' : mine.length === product ? ` (${mine.length})` : ` (${mine.length} of ${product})`;
    out.push(`${config}/${dims.join('.')}${count}`);
  }
  return out;
}
