// `daxpin report` and `daxpin compare` as functions the CLI calls: they read the
// run files, render, and say what to print and which exit code to use
// (0 ok, 1 compare found a regression, 2 bad input). Bad input never throws.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { compareRuns, renderComparison } from './compare';
import { readExpectations } from './expectations';
import { REPORT_FORMATS, renderReport } from './render';
import type { ReportFormat } from './render';
import { inputError, readRun, readRuns } from './runfile';
import { DaxpinError } from '../errors';
import { replaceFileAtomically } from '../host/durable';

export interface CommandResult {
  /** What goes to stdout; empty when the report was written to --out. */
  output: string;
  exitCode: number;
  /** One-line warnings and errors for stderr. */
  messages: string[];
}

export interface ReportOptions {
  runs: string[];
  /** One of REPORT_FORMATS; when absent, taken from the --out extension, else Markdown. */
  format?: string;
  out?: string;
  /** An expectations file (see expectations.ts), compared in the HTML and Markdown reports. */
  expectations?: string;
}

export interface CompareOptions {
  base: string;
  next: string;
  out?: string;
}

const FORMAT_BY_EXTENSION: Record<string, ReportFormat> = {
  '.html': 'html',
  '.htm': 'html',
  '.md': 'md',
  '.xml': 'junit',
  '.tap': 'tap',
  '.json': 'kcidb',
};

function resolveFormat(format: string | undefined, out: string | undefined): ReportFormat {
  if (format !== undefined) {
    if ((REPORT_FORMATS as readonly string[]).includes(format)) return format as ReportFormat;
    throw inputError(`unknown --format ${JSON.stringify(format)}; use one of ${REPORT_FORMATS.join(', ')}`);
  }
  return (out && FORMAT_BY_EXTENSION[path.extname(out).toLowerCase()]) || 'md';
}

/** Refuses an --out that is one of the inputs (by inode, whatever the path says). */
function checkOutNotInput(out: string, inputs: string[]): void {
  let outSt: fs.Stats;
  try {
    outSt = fs.statSync(out);
  } catch {
    return; // a new file
  }
  for (const input of inputs) {
    try {
      const st = fs.statSync(input);
      if (st.dev === outSt.dev && st.ino === outSt.ino) throw inputError(`--out ${out} is the input ${input}; it would be overwritten`);
    } catch (err) {
      if (err instanceof DaxpinError) throw err;
    }
  }
}

/** The report appears whole or not at all (a full disk leaves no partial or empty file). */
function writeOut(out: string, text: string): void {
  replaceFileAtomically(out, text);
}

/** Run a command body, turning bad input into exit code 2 and its one-line message. */
function guarded(body: (messages: string[]) => Omit<CommandResult, 'messages'>): CommandResult {
  const messages: string[] = [];
  try {
    return { ...body(messages), messages };
  } catch (err) {
    if (err instanceof DaxpinError) return { output: '', exitCode: err.exitCode, messages: [...messages, err.message] };
    throw err;
  }
}

export function reportCommand(opts: ReportOptions): CommandResult {
  return guarded((messages) => {
    const format = resolveFormat(opts.format, opts.out);
    if (opts.out !== undefined) checkOutNotInput(opts.out, [...opts.runs, ...(opts.expectations === undefined ? [] : [opts.expectations])]);
    const runs = readRuns(opts.runs);
    messages.push(...runs.flatMap((r) => r.warnings));
    const expectations = opts.expectations === undefined ? undefined : readExpectations(opts.expectations);
    const text = renderReport(runs, format, { expectations });
    if (opts.out === undefined) return { output: text, exitCode: 0 };
    writeOut(opts.out, text);
    messages.push(`wrote ${opts.out} (${format})`);
    return { output: '', exitCode: 0 };
  });
}

export function compareCommand(opts: CompareOptions): CommandResult {
  return guarded((messages) => {
    if (opts.out !== undefined) checkOutNotInput(opts.out, [opts.base, opts.next]);
    const base = readRun(opts.base);
    const next = readRun(opts.next);
    messages.push(...base.warnings, ...next.warnings);
    const cmp = compareRuns(base, next);
    const text = renderComparison(cmp);
    const exitCode = cmp.regressions.length > 0 ? 1 : 0;
    if (opts.out === undefined) return { output: text, exitCode };
    writeOut(opts.out, text);
    messages.push(`wrote ${opts.out}`);
    return { output: '', exitCode };
  });
}
