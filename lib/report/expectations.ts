// Expected outcome classes per kernel range, so a nightly run can flag what moved.
// Expectations are compared with measurements and never stand in for them: a
// case without a record has nothing to compare and is not reported here.
//
// File format (JSON): an array of entries
//   { "kernel": ">=6.15 <7.0",          space-separated comparators, all must hold;
//                                       "||" separates alternatives; a bare version means "="
//     "config": "xfs-dax",             optional: exact config name
//     "case": "uring-fixed.*",         optional: glob over the case id or "config/caseId"
//     "outcomeClass": "pin-refused:EOPNOTSUPP" | "/^pin-refused:/",   exact, or a /regex/
//     "note": "why"                    optional, shown with deviations }
// When several entries match a case, the last one wins: put general entries first
// and exceptions after them.

import * as fs from 'node:fs';
import { globToRegExp } from '../cases/matrix';
import { planKey } from '../outcome';
import { compareVersions } from '../versions';
import { inputError, readSmallFile } from './runfile';
import type { ParsedRun } from './runfile';
import { outcomeClass } from '../verdict';

export interface Expectation {
  kernel: string;
  config?: string;
  case?: string;
  outcomeClass: string;
  note?: string;
}

export interface Deviation {
  runId: string;
  kernel: string;
  key: string;
  expected: string;
  actual: string;
  /** Index of the expectation entry in its file. */
  entry: number;
  note?: string;
}

type Version = [number, number, number];
type Comparator = { op: '<' | '<=' | '>' | '>=' | '='; version: Version };

/** "6.12.38+deb13-amd64" → [6, 12, 38]; "7.0-rc3" → [7, 0, 0]; null when there is no leading version. */
export function kernelVersion(release: string): Version | null {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(release.trim());
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : null;
}

/** Parse a range into alternatives of comparator sets; throws on a malformed range. */
function parseRange(range: string): Comparator[][] {
  const alternatives = range.split('||').map((alt) =>
    alt
      .trim()
      .split(/\s+/)
      .filter((w) => w !== '')
      .map((word): Comparator => {
        const m = /^(<=|>=|<|>|=)?(.+)$/.exec(word);
        const version = m ? kernelVersion(m[2]) : null;
        if (!m || !version || !/^\d+\.\d+(\.\d+)?$/.test(m[2])) throw new Error(`bad version comparator "${word}"`);
        return { op: (m[1] ?? '=') as Comparator['op'], version };
      }),
  );
  if (alternatives.some((alt) => alt.length === 0)) throw new Error(`empty kernel range "${range}"`);
  return alternatives;
}

export function kernelInRange(release: string, range: string): boolean {
  const version = kernelVersion(release);
  if (!version) return false;
  return parseRange(range).some((alt) =>
    alt.every(({ op, version: bound }) => {
      const d = compareVersions(version.join('.'), bound.join('.'));
      return op === '<' ? d < 0 : op === '<=' ? d <= 0 : op === '>' ? d > 0 : op === '>=' ? d >= 0 : d === 0;
    }),
  );
}

function classMatcher(pattern: string): (cls: string) => boolean {
  const m = /^\/(.*)\/$/.exec(pattern);
  if (!m) return (cls) => cls === pattern;
  const re = new RegExp(m[1]);
  return (cls) => re.test(cls);
}

/** Check every entry's shape, range and regex; messages name the entry. */
export function parseExpectations(text: string, source = '<expectations>'): Expectation[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw inputError(`${source} is not JSON; expected an array of expectation entries`);
  }
  if (!Array.isArray(value)) throw inputError(`${source}: expected a JSON array of expectation entries`);
  return value.map((entry: unknown, i): Expectation => {
    const where = `${source} entry ${i}`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw inputError(`${where} is not an object`);
    const e = entry as Record<string, unknown>;
    for (const field of ['kernel', 'outcomeClass']) {
      if (typeof e[field] !== 'string' || e[field] === '') throw inputError(`${where} needs a "${field}" string`);
    }
    for (const field of ['config', 'case', 'note']) {
      if (e[field] !== undefined && typeof e[field] !== 'string') throw inputError(`${where}: "${field}" must be a string`);
    }
    try {
      parseRange(e.kernel as string);
      classMatcher(e.outcomeClass as string);
    } catch (err) {
      throw inputError(`${where}: ${(err as Error).message}`);
    }
    return e as unknown as Expectation;
  });
}

/** An expectations file is a hand-written table: anything larger is not one. */
export const MAX_EXPECTATIONS_BYTES = 16 * 1024 * 1024;

export function readExpectations(path: string): Expectation[] {
  return parseExpectations(readSmallFile(path, 'the expectations .json file', MAX_EXPECTATIONS_BYTES), path);
}

export function checkExpectations(runs: ParsedRun[], expectations: Expectation[]): Deviation[] {
  const entries = expectations.map((e, index) => ({
    e,
    index,
    caseRe: e.case === undefined ? null : globToRegExp(e.case),
    matches: classMatcher(e.outcomeClass),
  }));
  const out: Deviation[] = [];
  for (const parsed of runs) {
    const kernelEntries = entries.filter(({ e }) => kernelInRange(parsed.run.kernel, e.kernel));
    for (const rec of parsed.cases) {
      const key = planKey(rec.config, rec.caseId);
      const entry = kernelEntries
        .filter(({ e, caseRe }) => (e.config === undefined || e.config === rec.config) && (caseRe === null || caseRe.test(rec.caseId) || caseRe.test(key)))
        .pop();
      if (!entry) continue;
      const actual = outcomeClass(rec);
      if (!entry.matches(actual)) {
        out.push({ runId: parsed.run.runId, kernel: parsed.run.kernel, key, expected: entry.e.outcomeClass, actual, entry: entry.index, note: entry.e.note });
      }
    }
  }
  return out;
}
