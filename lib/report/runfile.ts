// The one JSONL reader for reports. A run file is valid up to its last complete
// line (the writer appends and flushes one line per record), so a killed run's
// torn last line is dropped with a warning; anything else that is not daxpin
// JSONL is refused with a one-line message.

import * as fs from 'node:fs';
import { SCHEMA_VERSION, planKey } from '../outcome';
import type { CaseRecord, ConfigRecord, EndRecord, KernelLogRecord, RunLine, RunRecord } from '../outcome';

/** Bad input given to report/compare: the CLI prints the message and exits 2. */
export class ReportInputError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'ReportInputError';
  }
}

export interface ParsedRun {
  /** The file name as given, for messages. */
  source: string;
  run: RunRecord;
  /** One record per planned case that ran, in file order (a repeated case keeps its last record). */
  cases: CaseRecord[];
  configs: ConfigRecord[];
  /** Kernel log lines logged outside any case (set-up, between cases). */
  kernelLogs: KernelLogRecord[];
  /** null when the run was killed before it could write its end record. */
  end: EndRecord | null;
  warnings: string[];
}

export function readRun(path: string): ParsedRun {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ReportInputError(code === 'ENOENT' ? `${path}: no such file` : `${path}: cannot read (${code ?? String(err)})`);
  }
  if (stat.isDirectory()) throw new ReportInputError(`${path} is a directory; give the run's .jsonl file`);
  if (!stat.isFile()) throw new ReportInputError(`${path} is not a regular file; give the run's .jsonl file`);
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (err) {
    throw new ReportInputError(`${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  return parseRunText(text, path);
}

const RECORD_KINDS = ['run', 'case', 'config', 'kernel-log', 'end'];
const CASE_STATUSES = ['done', 'error', 'crashed', 'abandoned', 'unsupported'];

export function parseRunText(text: string, source = '<input>'): ParsedRun {
  if (text.trim() === '') throw new ReportInputError(`${source} is empty; not a daxpin run file`);
  const lines = text.split('\n');
  const warnings: string[] = [];
  // Only a last line without its newline can be a torn write; a complete line
  // that does not parse is corruption.
  const torn = !text.endsWith('\n') ? lines.length - 1 : -1;
  let run: RunRecord | null = null;
  const byKey = new Map<string, CaseRecord>();
  const configs: ConfigRecord[] = [];
  const kernelLogs: KernelLogRecord[] = [];
  let end: EndRecord | null = null;

  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === '') continue;
    const where = `${source} line ${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      if (i === torn) {
        warnings.push(`last line of ${source} is incomplete (killed run?); ignored`);
        continue;
      }
      throw new ReportInputError(`${where} is not JSON; not a daxpin run file, or a corrupt one`);
    }
    const rec = checkRecord(value, where);
    if (rec.record === 'run') {
      if (run !== null) throw new ReportInputError(`${where}: a second run record; give each run as its own file`);
      run = rec;
      continue;
    }
    if (run === null) throw new ReportInputError(`${where}: a ${rec.record} record before the run record; not a daxpin run file`);
    if (rec.runId !== run.runId) {
      throw new ReportInputError(`${where}: record of run ${rec.runId} in the file of run ${run.runId}`);
    }
    if (rec.record === 'case') {
      const key = planKey(rec.config, rec.caseId);
      if (byKey.has(key)) {
        warnings.push(`${source}: case ${key} is recorded twice; the later record is used`);
        byKey.delete(key);
      }
      byKey.set(key, rec);
    } else if (rec.record === 'config') {
      configs.push(rec);
    } else if (rec.record === 'kernel-log') {
      kernelLogs.push(rec);
    } else {
      end = rec;
    }
  }
  if (run === null) throw new ReportInputError(`${source} has no complete run record; not a daxpin run file`);
  return { source, run, cases: [...byKey.values()], configs, kernelLogs, end, warnings };
}

type Shape = Record<string, 'string' | 'number' | 'boolean' | 'object' | 'array'>;

// The fields reports rely on, per record kind: enough to refuse foreign JSON
// with a clear message instead of failing later on a missing property.
const SHAPES: Record<string, Shape> = {
  run: { runId: 'string', kernel: 'string', host: 'string', argv: 'array', planned: 'array', runner: 'string' },
  case: {
    runId: 'string',
    caseId: 'string',
    kernel: 'string',
    config: 'string',
    daxVerified: 'boolean',
    mapping: 'string',
    pinMethod: 'string',
    layoutOp: 'string',
    status: 'string',
    map: 'object',
    pin: 'object',
    op: 'object',
    views: 'object',
    sigbus: 'array',
    release: 'object',
    kernelLog: 'array',
  },
  config: { runId: 'string', kernel: 'string', config: 'string', daxVerified: 'boolean' },
  'kernel-log': { runId: 'string', kernel: 'string', phase: 'string', lines: 'array' },
  end: { runId: 'string', notRun: 'array' },
};

function checkRecord(value: unknown, where: string): RunLine {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ReportInputError(`${where} is not a JSON object; not a daxpin run file`);
  }
  const obj = value as Record<string, unknown>;
  if (typeof obj.record !== 'string' || !RECORD_KINDS.includes(obj.record)) {
    throw new ReportInputError(`${where} has no daxpin "record" field; not a daxpin run file`);
  }
  if (obj.schema !== SCHEMA_VERSION) {
    throw new ReportInputError(`${where}: schema version ${JSON.stringify(obj.schema)}, this daxpin reads version ${SCHEMA_VERSION}`);
  }
  for (const [field, type] of Object.entries(SHAPES[obj.record])) {
    const v = obj[field];
    const actual = Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v;
    if (actual !== type) throw new ReportInputError(`${where}: ${obj.record} record without a valid "${field}" (${type} expected)`);
  }
  if (obj.record === 'case' && !CASE_STATUSES.includes(obj.status as string)) {
    throw new ReportInputError(`${where}: unknown case status ${JSON.stringify(obj.status)}`);
  }
  return obj as unknown as RunLine;
}

/** Planned cases ("config/caseId") without a case record: killed runs, crashes, lost workers. */
export function notRunKeys(parsed: ParsedRun): string[] {
  const ran = new Set(parsed.cases.map((c) => planKey(c.config, c.caseId)));
  return parsed.run.planned.filter((key) => !ran.has(key));
}

/** Read several runs for one report; the same run given twice is refused. */
export function readRuns(paths: string[]): ParsedRun[] {
  if (paths.length === 0) throw new ReportInputError('no run files given');
  const runs = paths.map(readRun);
  const seen = new Map<string, string>();
  for (const r of runs) {
    const other = seen.get(r.run.runId);
    if (other !== undefined) throw new ReportInputError(`${other} and ${r.source} are the same run (${r.run.runId})`);
    seen.set(r.run.runId, r.source);
  }
  return runs;
}
