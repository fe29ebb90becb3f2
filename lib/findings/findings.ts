// From case records to findings: every predicate of predicates.ts evaluated on every
// record of every run, matches grouped by the predicate's dimensions, and per kernel
// whether the finding is present, absent, not run or not measured, with rates over
// repeated runs (`--repeat`, or several run files of one kernel). Pure: runs in, data out.

import { planKey } from '../outcome';
import type { CaseRecord, RunRecord } from '../outcome';
import { conditionHolds, dimensionOf, fieldValues, isPresent, rowOf, valueHolds } from './fields';
import { PREDICATES } from './predicates';
import type { Predicate } from './predicates';
import { reproCommand } from './reproduce';

/** One run as findings need it: every record, repetitions included. */
export interface FindingsRun {
  run: RunRecord;
  records: CaseRecord[];
  /** Planned keys ("config/caseId") that never got a record. */
  notRun: string[];
}

export type Presence = 'present' | 'absent' | 'not-run' | 'not-measured';

export interface CaseRate {
  key: string;
  hits: number;
  /** Records of this case on this kernel on which the predicate was decidable. */
  runs: number;
}

export interface KernelFinding {
  kernel: string;
  status: Presence;
  hits: number;
  runs: number;
  /** Member cases, each with its own rate on this kernel (cases not recorded here are left out). */
  cases: CaseRate[];
}

export interface Finding {
  /** `<predicate>/<group values>[/<subject>]`: derived from what was observed, equal across runs. */
  id: string;
  predicate: Predicate;
  /** The grouping key, dimension → value. */
  group: Record<string, string>;
  /** The subject value (errno, log signature), when the predicate has one. */
  subject: string | null;
  title: string;
  /** Plan keys of the cases that showed it on some kernel, sorted. */
  cases: string[];
  /** One per kernel of the report, in kernel order. */
  kernels: KernelFinding[];
  /** Some case showed it in some but not all of its runs on one kernel. */
  flaky: boolean;
  /** A daxpin command line that reproduces it on a kernel where it is present. */
  reproduce: string;
}

export interface KernelSummary {
  kernel: string;
  /** Run ids merged into this kernel's column. */
  runIds: string[];
  /** Distinct cases recorded, and case records (repetitions counted). */
  cases: number;
  records: number;
  crashed: number;
  errors: number;
  notRun: number;
  /** Most repetitions of one case. */
  maxRepeat: number;
}

export interface FindingsReport {
  kernels: KernelSummary[];
  findings: Finding[];
}

const MEASURED_STATUSES = ['done', 'abandoned'];

/**
 * Whether a record can decide the predicate: the right status, no harness fault (daxpin's
 * own failure puts the record in doubt), and every required field present.
 */
function decidable(p: Predicate, rec: CaseRecord): boolean {
  const crashedPredicate = p.when.some((c) => c.field === 'status' && 'eq' in c && c.eq === 'crashed');
  if (!crashedPredicate && !MEASURED_STATUSES.includes(rec.status)) return false;
  if ((rec.harnessFaults?.length ?? 0) > 0) return false;
  return p.requires.every((f) => isPresent(rec, f));
}

/** The subject values a matching record shows ([null] for a predicate without a subject). */
function subjectsOf(p: Predicate, rec: CaseRecord): (string | null)[] {
  if (p.subject === undefined) return [null];
  const filter = p.subjectWhen;
  const values = fieldValues(rec, p.subject)
    .values.map((v) => (v === null ? '?' : String(v)))
    .filter((v) => filter === undefined || valueHolds(filter, v));
  return [...new Set(values.length > 0 ? values : ['?'])];
}

function slug(text: string): string {
  return (
    text
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '')
      .slice(0, 64)
      .replace(/-$/, '') || 'none'
  );
}

export function findingId(p: Predicate, groupValues: string[], subject: string | null): string {
  return [p.id, groupValues.join('.'), ...(subject === null ? [] : [slug(subject)])].join('/');
}

/** Numeric order of kernel releases (`6.1.0-50-amd64` < `6.12.38+deb13-amd64` < `7.3.4+deb14-amd64`). */
export function compareReleases(a: string, b: string): number {
  const pa = a.split(/[^0-9]+/).filter(Boolean).map(Number);
  const pb = b.split(/[^0-9]+/).filter(Boolean).map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? -1) - (pb[i] ?? -1);
    if (d !== 0) return d;
  }
  return a.localeCompare(b);
}

interface Accumulator {
  predicate: Predicate;
  group: Record<string, string>;
  subject: string | null;
  /** kernel → case key → hits */
  hits: Map<string, Map<string, number>>;
}

export function computeFindings(runs: FindingsRun[], predicates: Predicate[] = PREDICATES): FindingsReport {
  const kernelNames = [...new Set(runs.map((r) => r.run.kernel))].sort(compareReleases);
  const byKernel = new Map(kernelNames.map((k) => [k, runs.filter((r) => r.run.kernel === k)]));
  const recordsByKey = new Map([...byKernel].map(([k, kernelRuns]) => [k, indexByKey(kernelRuns.flatMap((r) => r.records))]));
  const acc = new Map<string, Accumulator>();
  for (const [kernel, kernelRuns] of byKernel) {
    for (const rec of kernelRuns.flatMap((r) => r.records)) {
      const withRow = { ...rec, row: rowOf(rec) };
      for (const p of predicates) {
        if (!decidable(p, rec) || !p.when.every((c) => conditionHolds(withRow, c))) continue;
        const groupValues = p.groupBy.map((d) => dimensionOf(rec, d));
        for (const subject of subjectsOf(p, rec)) {
          const id = findingId(p, groupValues, subject);
          let a = acc.get(id);
          if (!a) {
            a = { predicate: p, group: Object.fromEntries(p.groupBy.map((d, i) => [d, groupValues[i]])), subject, hits: new Map() };
            acc.set(id, a);
          }
          const perCase = a.hits.get(kernel) ?? new Map<string, number>();
          const key = planKey(rec.config, rec.caseId);
          perCase.set(key, (perCase.get(key) ?? 0) + 1);
          a.hits.set(kernel, perCase);
        }
      }
    }
  }
  const findings = [...acc.entries()].map(([id, a]) => toFinding(id, a, kernelNames, byKernel, recordsByKey));
  findings.sort(compareFindings);
  return { kernels: [...byKernel].map(([k, kernelRuns]) => kernelSummary(k, kernelRuns)), findings };
}

function indexByKey(records: CaseRecord[]): Map<string, CaseRecord[]> {
  const out = new Map<string, CaseRecord[]>();
  for (const r of records) {
    const key = planKey(r.config, r.caseId);
    out.set(key, [...(out.get(key) ?? []), r]);
  }
  return out;
}

function toFinding(
  id: string,
  a: Accumulator,
  kernelNames: string[],
  byKernel: Map<string, FindingsRun[]>,
  recordsByKey: Map<string, Map<string, CaseRecord[]>>,
): Finding {
  const cases = [...new Set([...a.hits.values()].flatMap((m) => [...m.keys()]))].sort();
  const kernels = kernelNames.map((kernel): KernelFinding => {
    const records = recordsByKey.get(kernel) ?? new Map<string, CaseRecord[]>();
    const hits = a.hits.get(kernel) ?? new Map<string, number>();
    const rates: CaseRate[] = [];
    let seen = 0;
    for (const key of cases) {
      const mine = records.get(key) ?? [];
      seen += mine.length;
      const runs = mine.filter((r) => decidable(a.predicate, r)).length;
      if (runs > 0) rates.push({ key, hits: hits.get(key) ?? 0, runs });
    }
    const h = rates.reduce((n, r) => n + r.hits, 0);
    const n = rates.reduce((s, r) => s + r.runs, 0);
    const status: Presence = h > 0 ? 'present' : n > 0 ? 'absent' : seen > 0 ? 'not-measured' : 'not-run';
    return { kernel, status, hits: h, runs: n, cases: rates };
  });
  const flaky = kernels.some((k) => k.cases.some((c) => c.hits > 0 && c.hits < c.runs));
  const groupText = Object.values(a.group).join(', ');
  return {
    id,
    predicate: a.predicate,
    group: a.group,
    subject: a.subject,
    title: `${a.predicate.title} [${groupText}]${a.subject === null ? '' : `: ${a.subject}`}`,
    cases,
    kernels,
    flaky,
    reproduce: reproduceFinding(kernels, byKernel),
  };
}

/** The case that showed the finding most reliably on the oldest kernel where it is present, as a daxpin command. */
function reproduceFinding(kernels: KernelFinding[], byKernel: Map<string, FindingsRun[]>): string {
  const where = kernels.find((k) => k.status === 'present') as KernelFinding;
  const best = [...where.cases].sort((x, y) => y.hits / y.runs - x.hits / x.runs || x.key.localeCompare(y.key))[0];
  const slash = best.key.indexOf('/');
  const config = best.key.slice(0, slash);
  const caseId = best.key.slice(slash + 1);
  const run = (byKernel.get(where.kernel) as FindingsRun[]).find((r) => r.records.some((rec) => planKey(rec.config, rec.caseId) === best.key)) as FindingsRun;
  const repeat = best.hits < best.runs ? ` --repeat ${best.runs}` : '';
  return reproCommand(run.run, config, caseId) + repeat;
}

/** Violations first; among them, those present on some kernels and absent on others (a change); then by id. */
function compareFindings(a: Finding, b: Finding): number {
  const sev = (f: Finding) => (f.predicate.severity === 'violation' ? 0 : 1);
  const steady = (f: Finding) => (f.kernels.some((k) => k.status === 'present') && f.kernels.some((k) => k.status === 'absent') ? 0 : 1);
  return sev(a) - sev(b) || steady(a) - steady(b) || a.id.localeCompare(b.id);
}

function kernelSummary(kernel: string, runs: FindingsRun[]): KernelSummary {
  const records = runs.flatMap((r) => r.records);
  const perCase = new Map<string, number>();
  for (const r of records) {
    const key = planKey(r.config, r.caseId);
    perCase.set(key, (perCase.get(key) ?? 0) + 1);
  }
  const recorded = new Set(perCase.keys());
  return {
    kernel,
    runIds: runs.map((r) => r.run.runId),
    cases: recorded.size,
    records: records.length,
    crashed: records.filter((r) => r.status === 'crashed').length,
    errors: records.filter((r) => r.status === 'error').length,
    notRun: new Set(runs.flatMap((r) => r.notRun).filter((k) => !recorded.has(k))).size,
    maxRepeat: Math.max(0, ...perCase.values()),
  };
}

/** A finding's kernels by status, as version ranges in kernel order: "6.1.0-50-amd64 … 6.12.38+deb13-amd64". */
export function presenceRanges(f: Finding): { status: Presence; from: string; to: string; kernels: string[] }[] {
  const out: { status: Presence; from: string; to: string; kernels: string[] }[] = [];
  for (const k of f.kernels) {
    const last = out[out.length - 1];
    if (last && last.status === k.status) {
      last.to = k.kernel;
      last.kernels.push(k.kernel);
    } else out.push({ status: k.status, from: k.kernel, to: k.kernel, kernels: [k.kernel] });
  }
  return out;
}

/** "3/5" (or "5/5"): hits over runs. */
export function rateText(k: { hits: number; runs: number }): string {
  return `${k.hits}/${k.runs}`;
}

export interface FindingChange {
  id: string;
  title: string;
  change: 'new' | 'gone' | 'not-run' | 'rate';
  detail: string;
}

/**
 * What changed against baseline findings. A report holds only findings present on some
 * kernel, so: new (not in the baseline), gone (in the baseline, not in the current
 * report), or present in both on one kernel with another rate. Given the plan keys
 * recorded now, a baseline finding none of whose cases ran now is 'not-run', not gone
 * (a `--cases` subset against a full baseline); without them the report cannot tell.
 */
export function diffFindings(baseline: FindingsReport, current: FindingsReport, recordedNow?: ReadonlySet<string>): FindingChange[] {
  const base = new Map(baseline.findings.map((f) => [f.id, f]));
  const now = new Set(current.findings.map((f) => f.id));
  const presentOn = (f: Finding) => f.kernels.filter((k) => k.status === 'present');
  const out: FindingChange[] = [];
  for (const f of current.findings) {
    const b = base.get(f.id);
    if (b === undefined) {
      out.push({ id: f.id, title: f.title, change: 'new', detail: `present on ${presentOn(f).map((k) => `${k.kernel} (${rateText(k)})`).join(', ')}` });
      continue;
    }
    for (const k of presentOn(f)) {
      const bk = presentOn(b).find((x) => x.kernel === k.kernel);
      if (bk && bk.hits * k.runs !== k.hits * bk.runs) {
        out.push({ id: f.id, title: f.title, change: 'rate', detail: `${k.kernel}: ${rateText(bk)} → ${rateText(k)}` });
      }
    }
  }
  for (const b of baseline.findings) {
    if (now.has(b.id)) continue;
    if (recordedNow !== undefined && !b.cases.some((k) => recordedNow.has(k))) {
      out.push({ id: b.id, title: b.title, change: 'not-run', detail: `present in the baseline on ${presentOn(b).map((k) => k.kernel).join(', ')}; none of its ${b.cases.length} case(s) ran now` });
      continue;
    }
    out.push({ id: b.id, title: b.title, change: 'gone', detail: `present in the baseline on ${presentOn(b).map((k) => k.kernel).join(', ')}; not seen now` });
  }
  return out;
}
