// KTAP version 1 (the kernel's Documentation/dev-tools/ktap.rst), so kernel CI parsers read
// daxpin without a plugin. One top-level test per kernel × config; inside it, one test per
// case and a last one, `config`, for the config's own checks (set-up, fsck):
//
//   KTAP version 1
//   1..2
//     KTAP version 1
//     # Subtest: 6.1.0-50-amd64 xfs-dax
//     1..365
//     ok 1 none.truncate-shrink.pte-shared # ok
//     # foreign-data: the pipe view holds another file's bytes
//     not ok 2 vmsplice.truncate-shrink.pte-shared # ok pipe=foreign
//     ok 3 none.truncate-shrink.pte-sync # SKIP map-refused:EOPNOTSUPP
//     ...
//     ok 365 config # xfs_repair -n: clean
//   not ok 1 6.1.0-50-amd64 xfs-dax
//
// Results map as in TAP and JUnit: a violation, a crash or a set-up error is `not ok`, its
// details as diagnostic lines right before it; a refused mapping and a planned case that did
// not run are `ok … # SKIP reason`; everything else is `ok`, the outcome class after `#`.
// The same lines come from a finished run file (`daxpin report --format ktap`) and, as the
// cases finish, from a running `daxpin run --ktap-console` (KtapStream), whose plan is known
// up front.

import * as fs from 'node:fs';
import type { CaseRecord, ConfigRecord, RunLine } from '../outcome';
import { buildGrid, suitesOf } from './grid';
import type { ParsedRun } from './runfile';
import { configChecks, invariantViolations, outcomeClass, verdictOf } from '../verdict';
import type { Verdict, Violation } from '../verdict';

export type KtapResult = 'pass' | 'fail' | 'skip';

export interface KtapPoint {
  name: string;
  result: KtapResult;
  /** After `#`: the SKIP reason, or the outcome class. */
  note: string;
  /** Diagnostic lines (without `# `) printed before the result line. */
  diagnostics: string[];
}

const INDENT = '  ';

/** Text KTAP can carry on one line, without starting a directive. */
function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ').replace(/#/g, '_').trim();
}

export function casePoint(caseId: string, verdict: Verdict | 'not-run', outcome: string, violations: Violation[], error?: string): KtapPoint {
  const name = oneLine(caseId);
  switch (verdict) {
    case 'not-run':
      return { name, result: 'skip', note: 'planned but not run', diagnostics: [] };
    case 'map-refused':
      return { name, result: 'skip', note: outcome, diagnostics: [] };
    case 'violation':
    case 'crashed':
    case 'error':
      return {
        name,
        result: 'fail',
        note: outcome,
        diagnostics: [...violations.map((v) => `${v.kind}: ${v.detail}`), ...(error !== undefined ? [`error: ${error}`] : [])].map(oneLine),
      };
    default:
      return { name, result: 'pass', note: outcome, diagnostics: [] };
  }
}

export function recordPoint(rec: CaseRecord): KtapPoint {
  const violations = invariantViolations(rec);
  return casePoint(rec.caseId, verdictOf(rec, violations), outcomeClass(rec), violations, rec.error);
}

/** The config's checks as one test; `undefined`: the config never reported (killed, crashed). */
export function configPoint(rec: ConfigRecord | undefined): KtapPoint {
  if (!rec) return { name: 'config', result: 'skip', note: 'no config record (the run ended first)', diagnostics: [] };
  const checks = configChecks(rec);
  const bad = checks.filter((c) => c.verdict !== 'ok');
  if (bad.length > 0) return { name: 'config', result: 'fail', note: bad.map((c) => c.name).join(', '), diagnostics: bad.map((c) => oneLine(`${c.name}: ${c.detail}`)) };
  return { name: 'config', result: 'pass', note: oneLine(checks.map((c) => c.detail).join('; ') || 'no checks'), diagnostics: [] };
}

export function pointLines(point: KtapPoint, n: number, indent: string): string[] {
  const status = point.result === 'fail' ? 'not ok' : 'ok';
  const after = point.result === 'skip' ? `SKIP ${point.note}` : point.note;
  return [...point.diagnostics.map((d) => `${indent}# ${d}`), `${indent}${status} ${n} ${point.name}${after ? ` # ${after}` : ''}`];
}

export function headerLines(tests: number, indent = ''): string[] {
  return [`${indent}KTAP version 1`, `${indent}1..${tests}`];
}

/** A suite (kernel × config) from start to result, lines as its points arrive. */
class SuiteWriter {
  private n = 0;
  private failed = false;

  constructor(
    readonly name: string,
    readonly index: number,
  ) {}

  start(points: number): string[] {
    return [`${INDENT}KTAP version 1`, `${INDENT}# Subtest: ${this.name}`, `${INDENT}1..${points}`];
  }

  point(p: KtapPoint): string[] {
    this.failed ||= p.result === 'fail';
    return pointLines(p, ++this.n, INDENT);
  }

  end(): string[] {
    return [`${this.failed ? 'not ok' : 'ok'} ${this.index} ${this.name}`];
  }
}

export interface KtapSuiteInput {
  name: string;
  points: KtapPoint[];
}

export function renderKtapSuites(suites: KtapSuiteInput[]): string {
  const out = headerLines(suites.length);
  suites.forEach((s, i) => {
    const w = new SuiteWriter(oneLine(s.name), i + 1);
    out.push(...w.start(s.points.length), ...s.points.flatMap((p) => w.point(p)), ...w.end());
  });
  return `${out.join('\n')}\n`;
}

/**
 * KTAP as a run goes: built from the plan (config → case ids, in run order), fed the run's
 * JSONL records as they are written; returns the lines each record completes. Cases of a
 * config print as they finish; the config's result once its config record (or the end) says
 * it is over; planned cases without a record are SKIPped then.
 */
export class KtapStream {
  private readonly order: string[];
  private readonly planned: Map<string, string[]>;
  private current: { config: string; writer: SuiteWriter; done: Set<string> } | null = null;
  private next = 0;
  private ended = false;

  /**
   * `details: false` (the console) names a failed case's violations by kind only: a guest's
   * console is also read for kernel splats, and a violation's detail quotes them.
   */
  constructor(
    private readonly kernel: string,
    planned: Array<{ config: string; caseIds: string[] }>,
    private readonly details = true,
  ) {
    const nonEmpty = planned.filter((p) => p.caseIds.length > 0);
    this.order = nonEmpty.map((p) => p.config);
    this.planned = new Map(nonEmpty.map((p) => [p.config, p.caseIds]));
  }

  begin(): string[] {
    return headerLines(this.order.length);
  }

  feed(line: RunLine): string[] {
    if (this.ended) return [];
    switch (line.record) {
      case 'case':
        return this.planned.has(line.config) ? [...this.open(line.config), ...this.casePoint(line)] : [];
      case 'config':
        return this.planned.has(line.config) ? [...this.open(line.config), ...this.close(line)] : [];
      case 'end':
        return this.finish();
      default:
        return [];
    }
  }

  /** Opens `config`, closing (and skipping) every planned config before it. */
  private open(config: string): string[] {
    if (this.current?.config === config) return [];
    const out = this.current ? this.close(undefined) : [];
    while (this.next < this.order.length && this.order[this.next] !== config) out.push(...this.skipWhole());
    if (this.next >= this.order.length) return out;
    this.next++;
    const writer = new SuiteWriter(oneLine(`${this.kernel} ${config}`), this.next);
    this.current = { config, writer, done: new Set() };
    return [...out, ...writer.start(this.planned.get(config)!.length + 1)];
  }

  private casePoint(rec: CaseRecord): string[] {
    const cur = this.current;
    if (!cur || cur.done.has(rec.caseId) || !this.planned.get(cur.config)!.includes(rec.caseId)) return [];
    cur.done.add(rec.caseId);
    const point = recordPoint(rec);
    if (!this.details && point.diagnostics.length > 0) {
      const kinds = [...invariantViolations(rec).map((v) => v.kind), ...(rec.error !== undefined ? ['error'] : [])];
      point.diagnostics = [`${kinds.join(', ')} (details in the run's JSONL)`];
    }
    return cur.writer.point(point);
  }

  private close(rec: ConfigRecord | undefined): string[] {
    const cur = this.current!;
    this.current = null;
    const missing = this.planned.get(cur.config)!.filter((id) => !cur.done.has(id));
    return [...missing.flatMap((id) => cur.writer.point(casePoint(id, 'not-run', 'not-run', []))), ...cur.writer.point(configPoint(rec)), ...cur.writer.end()];
  }

  /** The next planned config, none of whose cases ran. */
  private skipWhole(): string[] {
    const config = this.order[this.next++];
    const w = new SuiteWriter(oneLine(`${this.kernel} ${config}`), this.next);
    const ids = this.planned.get(config)!;
    return [...w.start(ids.length + 1), ...ids.flatMap((id) => w.point(casePoint(id, 'not-run', 'not-run', []))), ...w.point(configPoint(undefined)), ...w.end()];
  }

  private finish(): string[] {
    const out = this.current ? this.close(undefined) : [];
    while (this.next < this.order.length) out.push(...this.skipWhole());
    this.ended = true;
    return out;
  }
}

/** Plan keys of a config, for KtapStream, from "config/caseId" keys. */
export function planByConfig(keys: string[]): Array<{ config: string; caseIds: string[] }> {
  const out: Array<{ config: string; caseIds: string[] }> = [];
  for (const key of keys) {
    const slash = key.indexOf('/');
    const config = key.slice(0, slash);
    const caseId = key.slice(slash + 1);
    const last = out[out.length - 1];
    if (last?.config === config) last.caseIds.push(caseId);
    else out.push({ config, caseIds: [caseId] });
  }
  return out;
}

/** `daxpin report --format ktap`: every kernel × config of the runs given. */
export function renderKtap(runs: ParsedRun[]): string {
  return renderKtapSuites(
    suitesOf(buildGrid(runs)).map((suite) => ({
      name: `${suite.column.label} ${suite.config}`,
      points: [
        ...suite.entries.map(({ row, cell }) => casePoint(row.caseId, cell.verdict, cell.outcomeClass, cell.violations, cell.record?.error)),
        configPoint(suite.configRecord),
      ],
    })),
  );
}

/**
 * `daxpin run --ktap-console`: KtapStream's lines written to a console device (or a file)
 * as the run's records are written. One write per line (/dev/kmsg takes one record per
 * write). The JSONL stays the source of truth: a console that fails mid-run costs only
 * its own lines, said once on stderr.
 */
export class KtapConsole {
  private fd: number;
  private readonly stream: KtapStream;

  constructor(
    readonly file: string,
    kernel: string,
    plannedKeys: string[],
  ) {
    this.fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NOCTTY, 0o644);
    this.stream = new KtapStream(kernel, planByConfig(plannedKeys), false);
    this.emit(this.stream.begin());
  }

  write(line: RunLine): void {
    this.emit(this.stream.feed(line));
  }

  private emit(lines: string[]): void {
    for (const l of lines) {
      if (this.fd < 0) return;
      try {
        fs.writeSync(this.fd, `${l}\n`);
      } catch (err) {
        process.stderr.write(`daxpin: --ktap-console ${this.file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}; no more KTAP lines there\n`);
        this.close();
      }
    }
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}
