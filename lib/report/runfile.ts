// The one JSONL reader for reports. A run file is valid up to its last complete
// line (the writer appends and flushes one line per record), so a killed run's
// torn last line is dropped with a warning; anything else that is not daxpin
// JSONL is refused with a one-line message.

import * as fs from 'node:fs';
import { DaxpinError } from '../errors';
import { SCHEMA_VERSION, planKey } from '../outcome';
import type { BootRecord, CaseRecord, ConfigRecord, EndRecord, KernelLogRecord, RunLine, RunRecord } from '../outcome';

/** Bad input given to report/compare: the CLI prints the message and exits 2. */
export const inputError = (message: string) => new DaxpinError('EINPUT', message);

export interface ParsedRun {
  /** The file name as given, for messages. */
  source: string;
  run: RunRecord;
  /** One record per planned case that ran, in file order (of a case run `--repeat` times, its last run). */
  cases: CaseRecord[];
  /** Every run of every case (`--repeat` runs each case several times), in file order. */
  attempts: CaseRecord[];
  configs: ConfigRecord[];
  /** Kernel log lines logged outside any case (set-up, between cases). */
  kernelLogs: KernelLogRecord[];
  /** Each guest boot's provenance (VM runs). */
  boots: BootRecord[];
  /** null when the run was killed before it could write its end record. */
  end: EndRecord | null;
  warnings: string[];
}

/** Opens an input file for reading; O_NONBLOCK: a FIFO without a writer must not hang open(2). */
function openInput(path: string): number {
  try {
    return fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw inputError(code === 'ENOENT' ? `${path}: no such file` : `${path}: cannot read (${code ?? String(err)})`);
  }
}

/** The open input's stat, refusing a directory or anything but a regular file: `what` says what to give instead. */
function regularInput(fd: number, path: string, what: string): fs.Stats {
  const st = fs.fstatSync(fd);
  if (st.isDirectory()) throw inputError(`${path} is a directory; give ${what}`);
  if (!st.isFile()) throw inputError(`${path} is not a regular file; give ${what}`);
  return st;
}

/**
 * The whole of a small regular file (never a device, FIFO or directory, never more
 * than `maxBytes`): `what` names it in messages.
 */
export function readSmallFile(path: string, what: string, maxBytes: number): string {
  const fd = openInput(path);
  try {
    const st = regularInput(fd, path, what);
    if (st.size > maxBytes) throw inputError(`${path} has ${st.size} bytes; ${what} is at most ${maxBytes} bytes`);
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < buf.length) {
      const n = fs.readSync(fd, buf, off, buf.length - off, off);
      if (n === 0) break;
      off += n;
    }
    return buf.subarray(0, off).toString('utf8');
  } catch (err) {
    if (err instanceof DaxpinError) throw err;
    throw inputError(`${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  } finally {
    fs.closeSync(fd);
  }
}

/** A line longer than this is no daxpin record (the largest are a few hundred KiB). */
export const MAX_LINE_BYTES = 64 * 1024 * 1024;
const CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * Reads a run file line by line: memory grows with the number of distinct cases, not
 * with the file (a run resumed many times repeats records; the last one counts).
 */
export function readRun(path: string): ParsedRun {
  const fd = openInput(path);
  try {
    regularInput(fd, path, "the run's .jsonl file");
    const parser = new RunParser(path);
    const chunk = Buffer.alloc(CHUNK_BYTES);
    let carry: Buffer[] = [];
    let carried = 0;
    let lineNo = 0;
    let endsWithNewline = true;
    for (;;) {
      let n: number;
      try {
        n = fs.readSync(fd, chunk, 0, chunk.length, null);
      } catch (err) {
        throw inputError(`${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
      }
      if (n === 0) break;
      let start = 0;
      for (;;) {
        const nl = chunk.indexOf(0x0a, start);
        if (nl < 0 || nl >= n) break;
        const piece = chunk.subarray(start, nl);
        const line = carried > 0 ? Buffer.concat([...carry, piece]).toString('utf8') : piece.toString('utf8');
        carry = [];
        carried = 0;
        parser.line(line, ++lineNo, false);
        start = nl + 1;
      }
      if (start < n) {
        carried += n - start;
        if (carried > MAX_LINE_BYTES) throw inputError(`${path} line ${lineNo + 1} is longer than ${MAX_LINE_BYTES / 1024 / 1024} MiB; not a daxpin run file`);
        carry.push(Buffer.from(chunk.subarray(start, n)));
      }
      endsWithNewline = start === n;
    }
    if (carried > 0) parser.line(Buffer.concat(carry).toString('utf8'), ++lineNo, true);
    else if (lineNo === 0 && endsWithNewline) throw inputError(`${path} is empty; not a daxpin run file`);
    return parser.finish();
  } finally {
    fs.closeSync(fd);
  }
}

const RECORD_KINDS = ['run', 'boot', 'case', 'config', 'kernel-log', 'end'];
const CASE_STATUSES = ['done', 'error', 'crashed', 'abandoned', 'unsupported'];

export function parseRunText(text: string, source = '<input>'): ParsedRun {
  if (text.trim() === '') throw inputError(`${source} is empty; not a daxpin run file`);
  const lines = text.split('\n');
  const parser = new RunParser(source);
  // Only a last line without its newline can be a torn write.
  const torn = !text.endsWith('\n') ? lines.length - 1 : -1;
  for (let i = 0; i < lines.length; i++) parser.line(lines[i], i + 1, i === torn);
  return parser.finish();
}

/** Turns lines into a ParsedRun, keeping one record per case (the last). */
class RunParser {
  private run: RunRecord | null = null;
  private readonly byKey = new Map<string, CaseRecord>();
  /** By plan key and repetition: a record of the same run of a case twice is a duplicate. */
  private readonly byAttempt = new Map<string, CaseRecord>();
  private readonly configs: ConfigRecord[] = [];
  private readonly kernelLogs: KernelLogRecord[] = [];
  private readonly boots: BootRecord[] = [];
  private end: EndRecord | null = null;
  private readonly warnings: string[] = [];
  private duplicates = 0;
  private firstDuplicate = '';
  private blank = true;

  constructor(private readonly source: string) {}

  /** One line (without its newline); `last` when it is an unterminated last line, which may be torn. */
  line(line: string, lineNo: number, last: boolean): void {
    if (line.trim() === '') return;
    this.blank = false;
    const where = `${this.source} line ${lineNo}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      if (last) {
        this.warnings.push(`last line of ${this.source} is incomplete (killed run?); ignored`);
        return;
      }
      throw inputError(`${where} is not JSON; not a daxpin run file, or a corrupt one`);
    }
    const rec = checkRecord(value, where);
    if (rec.record === 'run') {
      if (this.run !== null) throw inputError(`${where}: a second run record; give each run as its own file`);
      this.run = rec;
      return;
    }
    if (this.run === null) throw inputError(`${where}: a ${rec.record} record before the run record; not a daxpin run file`);
    if (rec.runId !== this.run.runId) {
      throw inputError(`${where}: record of run ${rec.runId} in the file of run ${this.run.runId}`);
    }
    if (rec.record === 'case') {
      const key = planKey(rec.config, rec.caseId);
      const attempt = rec.repeat === undefined ? key : `${key}#${rec.repeat}`;
      if (this.byAttempt.has(attempt)) {
        if (this.duplicates++ === 0) this.firstDuplicate = key;
        // Re-inserted: file order is the order of the last records.
        this.byAttempt.delete(attempt);
      }
      this.byAttempt.set(attempt, rec);
      this.byKey.delete(key);
      this.byKey.set(key, rec);
    } else if (rec.record === 'config') {
      this.configs.push(rec);
    } else if (rec.record === 'kernel-log') {
      this.kernelLogs.push(rec);
    } else if (rec.record === 'boot') {
      this.boots.push(rec);
    } else {
      this.end = rec;
    }
  }

  finish(): ParsedRun {
    if (this.blank) throw inputError(`${this.source} is empty; not a daxpin run file`);
    if (this.run === null) throw inputError(`${this.source} has no complete run record; not a daxpin run file`);
    const warnings = [...this.warnings];
    if (this.duplicates === 1) warnings.push(`${this.source}: case ${this.firstDuplicate} is recorded twice; the later record is used`);
    else if (this.duplicates > 1) {
      warnings.push(`${this.source}: ${this.duplicates} case records repeat an earlier one (first: ${this.firstDuplicate}); the later records are used`);
    }
    return { source: this.source, run: this.run, cases: [...this.byKey.values()], attempts: [...this.byAttempt.values()], configs: this.configs, kernelLogs: this.kernelLogs, boots: this.boots, end: this.end, warnings };
  }
}

/** A JSON type; `strings` is an array of strings, `objects` an array of objects. */
type JsonType = 'string' | 'number' | 'boolean' | 'null' | 'object' | 'array' | 'strings' | 'objects';
type Shape = Record<string, JsonType | JsonType[]>;

const CALL: Shape = { ok: 'boolean', errno: ['string', 'null'] };

// The fields reports rely on, per record kind and nested object: a record of the
// wrong shape is refused with its file and line, never left to fail in a renderer.
const SHAPES: Record<string, Shape> = {
  run: { runId: 'string', kernel: 'string', host: 'string', argv: 'strings', planned: 'strings', runner: 'string' },
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
    pmd: ['boolean', 'null'],
    holdMs: 'number',
    settleMs: 'number',
    map: 'object',
    pin: 'object',
    op: 'object',
    views: 'object',
    sigbus: 'strings',
    release: 'object',
    kernelLog: 'objects',
    durationMs: 'number',
    error: ['string', 'null'],
    notes: ['strings', 'null'],
    console: ['string', 'null'],
  },
  config: { runId: 'string', kernel: 'string', config: 'string', daxVerified: 'boolean', fsck: ['object', 'null'], error: ['string', 'null'] },
  'kernel-log': { runId: 'string', kernel: 'string', phase: 'string', lines: 'objects' },
  boot: { runId: 'string', kernel: 'string', provenance: 'object' },
  end: { runId: 'string', notRun: 'strings' },
};

/** Fields that may be missing (older records, or set only sometimes). */
const OPTIONAL = new Set(['case.pmd', 'case.holdMs', 'case.settleMs', 'case.durationMs', 'case.error', 'case.notes', 'case.console', 'config.fsck', 'config.error']);

const NESTED: Record<string, Shape> = {
  'case.map': CALL,
  'case.pin': CALL,
  'case.release': { ...CALL, ms: ['number', 'null'] },
  'case.op': {
    ...CALL,
    started: 'boolean',
    returnedMs: ['number', 'null'],
    blockedUntilRelease: 'boolean',
    afterReleaseMs: ['number', 'null'],
    hung: ['string', 'null'],
    taskState: ['string', 'null'],
    stack: ['strings', 'null'],
  },
  'case.views': { buffer: 'string', pipe: 'string', file: 'string', peer: 'string', canary: 'string' },
  'case.kernelLog[]': { level: 'number', signature: 'string', text: 'string' },
  'config.fsck': { tool: 'string', ok: 'boolean', output: 'string' },
};

function typeOf(v: unknown): JsonType {
  if (v === null) return 'null';
  if (Array.isArray(v)) {
    if (v.every((x) => typeof x === 'string')) return 'strings';
    if (v.every((x) => typeof x === 'object' && x !== null && !Array.isArray(x))) return 'objects';
    return 'array';
  }
  return typeof v as JsonType;
}

function fits(v: unknown, want: JsonType | JsonType[]): boolean {
  const actual = typeOf(v);
  const wanted = Array.isArray(want) ? want : [want];
  // `array` is any array; an empty array is an array of anything.
  if (Array.isArray(v) && (wanted.includes('array') || (v.length === 0 && wanted.some((w) => w === 'strings' || w === 'objects')))) return true;
  return wanted.includes(actual);
}

function describe(want: JsonType | JsonType[]): string {
  const names: Record<JsonType, string> = { string: 'a string', number: 'a number', boolean: 'true or false', null: 'null', object: 'an object', array: 'an array', strings: 'an array of strings', objects: 'an array of objects' };
  return (Array.isArray(want) ? want : [want]).map((w) => names[w]).join(' or ');
}

function checkShape(obj: Record<string, unknown>, shape: Shape, prefix: string, kind: string, where: string): void {
  for (const [field, want] of Object.entries(shape)) {
    const v = obj[field];
    const name = `${prefix}${field}`;
    if (v === undefined && OPTIONAL.has(`${kind}.${name}`)) continue;
    if (!fits(v, want)) throw inputError(`${where}: ${kind} record without a valid "${name}" (${describe(want)} expected, got ${JSON.stringify(v) ?? 'nothing'})`.slice(0, 300));
    const nested = NESTED[`${kind}.${name}`];
    if (nested && v !== null) checkShape(v as Record<string, unknown>, nested, `${name}.`, kind, where);
    const items = NESTED[`${kind}.${name}[]`];
    if (items) (v as Record<string, unknown>[]).forEach((item, i) => checkShape(item, items, `${name}[${i}].`, kind, where));
  }
}

function checkRecord(value: unknown, where: string): RunLine {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw inputError(`${where} is not a JSON object; not a daxpin run file`);
  }
  const obj = value as Record<string, unknown>;
  if (typeof obj.record !== 'string' || !RECORD_KINDS.includes(obj.record)) {
    throw inputError(`${where} has no daxpin "record" field; not a daxpin run file`);
  }
  if (obj.schema !== SCHEMA_VERSION) {
    throw inputError(`${where}: schema version ${JSON.stringify(obj.schema)}, this daxpin reads version ${SCHEMA_VERSION}`);
  }
  checkShape(obj, SHAPES[obj.record], '', obj.record, where);
  if (obj.record === 'case' && !CASE_STATUSES.includes(obj.status as string)) {
    throw inputError(`${where}: unknown case status ${JSON.stringify(obj.status)}`);
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
  if (paths.length === 0) throw inputError('no run files given');
  const runs = paths.map(readRun);
  const seen = new Map<string, string>();
  for (const r of runs) {
    const other = seen.get(r.run.runId);
    if (other !== undefined) throw inputError(`${other} and ${r.source} are the same run (${r.run.runId})`);
    seen.set(r.run.runId, r.source);
  }
  return runs;
}

/** A parsed run as the findings engine reads it: every record, repetitions included. */
export function findingsRun(parsed: ParsedRun): { run: RunRecord; records: CaseRecord[]; notRun: string[] } {
  return { run: parsed.run, records: parsed.attempts, notRun: notRunKeys(parsed) };
}
