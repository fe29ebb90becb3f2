// Bisection over Debian kernel package versions: the search itself, as pure functions
// of a state (which versions were tried and what they showed). `daxpin bisect` boots
// the version `nextStep` names, records its verdict, and asks again; a version that
// did not boot is skipped (as `git bisect skip`), and the answer is the adjacent pair
// of tried versions where the outcome changes.

import { compareReleases } from './findings';

export type StepVerdict = 'good' | 'bad' | 'skip';

export interface BisectState {
  /** Every candidate version, from the good end to the bad end (both included). */
  versions: string[];
  /** Verdicts so far by version; the two ends are good and bad by definition. */
  verdicts: Record<string, StepVerdict>;
}

export type BisectStep =
  | { kind: 'test'; version: string; /** Candidates left between the bounds, untested. */ remaining: number }
  | {
      kind: 'done';
      /** The last version with the good outcome and the first with the bad one. */
      good: string;
      bad: string;
      /** Versions between them that could not be tested (did not boot). */
      skipped: string[];
    };

/** The innermost good and bad versions: the last good before the first bad after it. */
function bounds(s: BisectState): { lo: number; hi: number } {
  const v = (i: number) => (i === 0 ? 'good' : i === s.versions.length - 1 ? 'bad' : s.verdicts[s.versions[i]]);
  let hi = s.versions.length - 1;
  for (let i = 1; i < s.versions.length; i++) {
    if (v(i) === 'bad') {
      hi = i;
      break;
    }
  }
  let lo = 0;
  for (let i = 0; i < hi; i++) if (v(i) === 'good') lo = i;
  return { lo, hi };
}

export function nextStep(s: BisectState): BisectStep {
  if (s.versions.length < 2) throw new Error('a bisection needs two versions');
  const { lo, hi } = bounds(s);
  const untested: number[] = [];
  for (let i = lo + 1; i < hi; i++) if (s.verdicts[s.versions[i]] === undefined) untested.push(i);
  if (untested.length === 0) {
    return { kind: 'done', good: s.versions[lo], bad: s.versions[hi], skipped: s.versions.slice(lo + 1, hi) };
  }
  // The untested version nearest the middle of the bounds: skipped ones shift the pick, as in git bisect.
  const mid = (lo + hi) / 2;
  const pick = untested.reduce((best, i) => (Math.abs(i - mid) < Math.abs(best - mid) ? i : best));
  return { kind: 'test', version: s.versions[pick], remaining: untested.length };
}

/**
 * A version's outcome: per matching case, the outcome classes its runs showed. Good
 * when it equals the good end's, else bad (the outcome changed).
 */
export type OutcomeSignature = Record<string, string[]>;

export function signatureText(sig: OutcomeSignature): string {
  return Object.keys(sig)
    .sort()
    .map((k) => `${k}: ${[...new Set(sig[k])].sort().join(' | ')}`)
    .join('\n');
}

export function judgeStep(good: OutcomeSignature, tested: OutcomeSignature | null): StepVerdict {
  if (tested === null || Object.keys(tested).length === 0) return 'skip';
  return signatureText(tested) === signatureText(good) ? 'good' : 'bad';
}

/**
 * Upstream versions a Debian changelog names, newest entry first as in the file:
 * the package version of each entry and the upstream stable releases it merged
 * ("New upstream stable update: …ChangeLog-6.1.156", "New upstream release").
 */
export interface ChangelogEntry {
  version: string;
  upstream: string[];
}

export function parseDebianChangelog(text: string): ChangelogEntry[] {
  const out: ChangelogEntry[] = [];
  for (const line of text.split('\n')) {
    const head = /^(\S+) \(([^)]+)\) /.exec(line);
    if (head) {
      // A source `linux` entry is itself an upstream version (6.15.6-1~exp1 is 6.15.6; 6.16~rc7 is 6.16-rc7).
      const own = head[1] === 'linux' ? [head[2].replace(/-[^-]*$/, '').replace(/^\d+:/, '').replace('~rc', '-rc')] : [];
      out.push({ version: head[2], upstream: own });
      continue;
    }
    const entry = out[out.length - 1];
    if (!entry) continue;
    for (const m of line.matchAll(/ChangeLog-(\d+\.\d+(?:\.\d+)?)/g)) if (!entry.upstream.includes(m[1])) entry.upstream.push(m[1]);
    const rel = /New upstream (?:stable )?release:? (?:v?(\d+\.\d+(?:\.\d+)?))?/i.exec(line);
    if (rel && rel[1] && !entry.upstream.includes(rel[1])) entry.upstream.push(rel[1]);
  }
  return out;
}

/**
 * The entries of the bad package's changelog newer than the good package's version:
 * what changed between the two (a changelog of another branch stops at the first
 * entry not newer than the good version).
 */
export function changesBetween(entries: ChangelogEntry[], goodVersion: string): ChangelogEntry[] {
  const i = entries.findIndex((e) => compareReleases(e.version, goodVersion) <= 0);
  return i === -1 ? entries : entries.slice(0, i);
}
