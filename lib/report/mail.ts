// The mail: plain text within 72 columns, for a kernel list. Findings first (what
// was observed, on which kernels, how often, how to reproduce it), then what changed
// against a baseline, then the kernels with their crashed and not-run counts.

import { computeFindings, diffFindings, presenceRanges, rateText } from '../findings/findings';
import type { Finding, FindingsReport, KernelFinding } from '../findings/findings';
import { reproSupport } from '../findings/repro-c';
import { findingsRun } from './runfile';
import type { ParsedRun } from './runfile';
import { planKey } from '../outcome';

export const MAIL_WIDTH = 72;

export interface MailOptions {
  /** Runs to compare against (`--baseline`). */
  baseline?: ParsedRun[];
}

/** Words of `text` filled into lines of at most `width` columns after `indent` (a longer word stands alone). */
export function wrap(text: string, indent = '', width = MAIL_WIDTH, firstIndent = indent): string[] {
  const out: string[] = [];
  let line = firstIndent;
  let empty = true;
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (!empty && line.length + 1 + word.length > width) {
      out.push(line);
      line = indent;
      empty = true;
    }
    line += empty ? word : ` ${word}`;
    empty = false;
  }
  if (!empty) out.push(line);
  return out;
}

/** A shell command broken with backslashes so every line fits. */
export function wrapCommand(command: string, indent: string, width = MAIL_WIDTH): string[] {
  const words = command.split(' ');
  const out: string[] = [];
  let line = indent;
  for (const word of words) {
    const next = line.trim() === '' ? `${line}${word}` : `${line} ${word}`;
    if (next.length + 2 > width && line.trim() !== '') {
      out.push(`${line} \\`);
      line = `${indent}  ${word}`;
    } else line = next;
  }
  out.push(line);
  return out;
}

function shortKernel(release: string): string {
  return release.replace(/-amd64$/, '');
}

function kernelLine(k: KernelFinding): string {
  return `${k.status.padEnd(12)} ${shortKernel(k.kernel)}${k.runs > 0 ? ` (${rateText(k)})` : ''}`;
}

function rangeText(f: Finding): string {
  return presenceRanges(f)
    .map((r) => `${r.status} ${r.from === r.to ? shortKernel(r.from) : `${shortKernel(r.from)} .. ${shortKernel(r.to)}`}`)
    .join('; ');
}

const CASES_LISTED = 8;

function findingBlock(n: number, f: Finding): string[] {
  const out = [`[${n}] ${f.id}${f.flaky ? '  (flaky)' : ''}`];
  out.push(...wrap(f.title, '    '));
  out.push(...wrap(`kernels: ${rangeText(f)}`, '      ', MAIL_WIDTH, '    '));
  for (const k of f.kernels) out.push(`      ${kernelLine(k)}`);
  out.push(`    cases (${f.cases.length}):`);
  for (const key of f.cases.slice(0, CASES_LISTED)) out.push(...wrap(key, '        ', MAIL_WIDTH, '      '));
  if (f.cases.length > CASES_LISTED) out.push(`      ... and ${f.cases.length - CASES_LISTED} more`);
  out.push('    reproduce:');
  out.push(...wrapCommand(f.reproduce, '      '));
  const c = cReproCommand(f);
  if (c) out.push('    reproduce without daxpin (C program + setup lines):', ...wrapCommand(c, '      '));
  return [...out, ''];
}

/** `daxpin repro` for the finding's reproducing case, when the C generator covers its pin method and op. */
function cReproCommand(f: Finding): string | null {
  const m = /--config (\S+) --cases '([^']+)'/.exec(f.reproduce);
  if (!m) return null;
  const [pinMethod, layoutOp] = m[2].split('.');
  if (reproSupport(pinMethod, layoutOp) !== null) return null;
  return `daxpin repro '${m[2]}' --config ${m[1]} --c --out repro`;
}

function differs(f: Finding): boolean {
  const s = new Set(f.kernels.map((k) => k.status).filter((s) => s === 'present' || s === 'absent'));
  return s.size > 1;
}

function subject(report: FindingsReport, violations: Finding[]): string {
  const kernels = report.kernels.length === 1 ? shortKernel(report.kernels[0].kernel) : `${report.kernels.length} kernels`;
  const top = violations[0];
  const candidates = top
    ? [
        `Subject: [daxpin] ${top.predicate.id}${violations.length > 1 ? ` and ${violations.length - 1} more` : ''} on ${kernels}`,
        `Subject: [daxpin] ${violations.length} invariant finding(s) on ${kernels}`,
      ]
    : [`Subject: [daxpin] no invariant findings on ${kernels}`];
  return candidates.find((c) => c.length <= MAIL_WIDTH) ?? candidates[candidates.length - 1].slice(0, MAIL_WIDTH);
}

export function renderMail(runs: ParsedRun[], opts: MailOptions = {}): string {
  const report = computeFindings(runs.map(findingsRun));
  const violations = report.findings.filter((f) => f.predicate.severity === 'violation' && f.kernels.some((k) => k.status === 'present'));
  const changing = report.findings.filter((f) => f.predicate.severity === 'behaviour' && differs(f));
  const steady = report.findings.filter((f) => f.predicate.severity === 'behaviour' && !differs(f));
  const out: string[] = [subject(report, violations), ''];
  const records = report.kernels.reduce((n, k) => n + k.records, 0);
  const repeats = Math.max(0, ...report.kernels.map((k) => k.maxRepeat));
  out.push(
    ...wrap(
      `daxpin measured ${records} case runs on ${report.kernels.length} kernel(s)${repeats > 1 ? ` (up to ${repeats} runs per case)` : ''}: ` +
        `${violations.length} finding(s) break an invariant, ${changing.length} behaviour finding(s) differ between kernels. ` +
        'A finding is one predicate of lib/findings/predicates.ts over the observed outcomes, grouped by the rows its cases share; ' +
        'rates are runs that showed it over runs that could.',
    ),
    '',
  );
  out.push('Kernels', '');
  for (const k of report.kernels) {
    out.push(`  ${shortKernel(k.kernel)}`);
    out.push(...wrap(`${k.cases} cases, ${k.records} runs, ${k.crashed} crashed, ${k.errors} errors, ${k.notRun} not run`, '      ', MAIL_WIDTH, '    '));
  }
  out.push('');
  out.push(`Findings that break an invariant (${violations.length})`, '');
  if (violations.length === 0) out.push('  None.', '');
  violations.forEach((f, i) => out.push(...findingBlock(i + 1, f)));
  out.push(`Behaviour that differs between kernels (${changing.length})`, '');
  if (changing.length === 0) out.push('  None.', '');
  changing.forEach((f, i) => out.push(...findingBlock(violations.length + i + 1, f)));
  if (opts.baseline) out.push(...baselineSection(report, opts.baseline, new Set(runs.flatMap((r) => r.cases.map((c) => planKey(c.config, c.caseId))))));
  out.push(`Behaviour the same on every kernel (${steady.length})`, '');
  for (const f of steady) out.push(...wrap(`${f.id}: ${rangeText(f)}`, '      ', MAIL_WIDTH, '  - '));
  out.push('', '-- ', 'daxpin report --format mail');
  return `${out.join('\n')}\n`;
}

function baselineSection(report: FindingsReport, baseline: ParsedRun[], recordedNow: ReadonlySet<string>): string[] {
  const base = computeFindings(baseline.map(findingsRun));
  const changes = diffFindings(base, report, recordedNow);
  const kernels = base.kernels.map((k) => shortKernel(k.kernel)).join(', ');
  const out = [`Changes against the baseline (${kernels})`, ''];
  if (changes.length === 0) out.push('  None.');
  for (const c of changes) {
    out.push(...wrap(`${c.change}: ${c.id}`, '      ', MAIL_WIDTH, '  - '));
    out.push(...wrap(c.detail, '      '));
  }
  return [...out, ''];
}
