// `daxpin nightly --baseline DIR`: every kernel series the archive has (`daxpin vm
// --kernel all`), each compared with the same series in the previous night's results,
// reports written next to the runs (HTML, KCIDB, a mail body), and an exit status a
// timer unit can act on: 1 when something fails that held the night before.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DaxpinError } from './errors';
import { writeFileSynced } from './host/durable';
import { Comparison, compareRuns, renderComparison } from './report/compare';
import { REPORT_FORMATS, ReportFormat, renderReport } from './report/render';
import { ParsedRun, readRun } from './report/runfile';
import { compareVersions } from './versions';
import type { VmOptions, VmResult } from './vm/runner';
import { kernelSeries } from './vm/kernels';

export interface NightlyOptions extends Omit<VmOptions, 'kernels' | 'outDir'> {
  /** The previous night's out dir (its `<release>.jsonl` files). */
  baseline: string;
  /** Default `./daxpin-nightly-<runId>`. */
  outDir?: string;
  /** The VM run; tests replace it. */
  vm?: (o: VmOptions) => Promise<VmResult>;
}

/** The baseline run of a release's series: the newest `<release>.jsonl` of that series among `files`. */
export function baselineFor(release: string, files: string[]): string | null {
  const series = kernelSeries(release);
  const same = files
    .filter((f) => f.endsWith('.jsonl'))
    .map((f) => f.slice(0, -'.jsonl'.length))
    .filter((r) => kernelSeries(r) === series)
    .sort(compareVersions);
  return same.length > 0 ? `${same[same.length - 1]}.jsonl` : null;
}

/** What is new tonight in one series: regressions against the baseline, or every violation when there is none. */
export interface SeriesVerdict {
  release: string;
  baseline: string | null;
  comparison: Comparison | null;
  /** Keys that fail tonight and did not fail in the baseline (all of tonight's violations without one). */
  newFindings: string[];
  /** The run could not be read, or the kernel did not run. */
  error: string | null;
}

export function nightlyExitCode(verdicts: SeriesVerdict[], vmExit: number): number {
  if (verdicts.some((v) => v.newFindings.length > 0)) return 1;
  return vmExit === 2 || verdicts.some((v) => v.error !== null) ? 2 : 0;
}

/** The mail body: what is new first, then each series' comparison. */
export function mailBody(verdicts: SeriesVerdict[], outDir: string): string {
  const fresh = verdicts.filter((v) => v.newFindings.length > 0);
  const out = [
    `daxpin nightly: ${fresh.length === 0 ? 'nothing new' : `${fresh.reduce((n, v) => n + v.newFindings.length, 0)} new finding(s)`} over ${verdicts.length} kernel(s); results in ${outDir}`,
    '',
  ];
  for (const v of verdicts) {
    const against = v.baseline ? `against ${v.baseline}` : 'no baseline for this series';
    out.push(`- ${v.release} (${against}): ${v.error ?? (v.newFindings.length > 0 ? `NEW: ${v.newFindings.join(', ')}` : 'nothing new')}`);
  }
  for (const v of verdicts) if (v.comparison) out.push('', renderComparison(v.comparison));
  return `${out.join('\n')}\n`;
}

function judgeSeries(release: string, file: string, violations: string[], baselineDir: string, baselineFiles: string[]): { verdict: SeriesVerdict; run: ParsedRun | null } {
  const baseline = baselineFor(release, baselineFiles);
  const verdict: SeriesVerdict = { release, baseline, comparison: null, newFindings: [], error: null };
  let run: ParsedRun | null = null;
  try {
    run = readRun(file);
    if (baseline === null) {
      verdict.newFindings = violations;
    } else {
      verdict.comparison = compareRuns(readRun(path.join(baselineDir, baseline)), run);
      verdict.newFindings = verdict.comparison.regressions.map((r) => r.key);
    }
  } catch (err) {
    verdict.error = err instanceof Error ? err.message : String(err);
  }
  return { verdict, run };
}

export async function nightlyCommand(o: NightlyOptions): Promise<number> {
  const log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (!fs.existsSync(o.baseline) || !fs.statSync(o.baseline).isDirectory()) {
    log(`daxpin: ${new DaxpinError('EUSAGE', `--baseline ${o.baseline}: no such directory (the previous night's --out-dir; an empty one for the first night)`).message}`);
    return 2;
  }
  const baselineFiles = fs.readdirSync(o.baseline);
  const vm = o.vm ?? (await import('./vm/runner')).vmCommand;
  const outDir = o.outDir ?? `daxpin-nightly-${new Date().toISOString().slice(0, 10)}`;
  const result = await vm({ ...o, kernels: ['all'], outDir });
  if (result.outDir === null) return result.exitCode;

  const verdicts: SeriesVerdict[] = [];
  const runs: ParsedRun[] = [];
  for (const k of result.kernels) {
    if (!k.file) {
      verdicts.push({ release: k.release, baseline: null, comparison: null, newFindings: [], error: k.error ?? 'did not run' });
      continue;
    }
    const { verdict, run } = judgeSeries(k.release, k.file, k.violations, o.baseline, baselineFiles);
    verdicts.push(verdict);
    if (run) runs.push(run);
  }
  const write = (name: string, text: string) => writeFileSynced(path.join(result.outDir as string, name), text);
  write('report.html', renderReport(runs, 'html'));
  write('kcidb.json', renderReport(runs, 'kcidb'));
  // The findings' own mail format when this daxpin has one, else the Markdown report.
  const mailFormat = (REPORT_FORMATS as readonly string[]).includes('mail') ? ('mail' as ReportFormat) : null;
  write('mail.txt', mailBody(verdicts, result.outDir) + (mailFormat ? `\n${renderReport(runs, mailFormat)}` : ''));
  const code = nightlyExitCode(verdicts, result.exitCode);
  log(`daxpin nightly: ${verdicts.filter((v) => v.newFindings.length > 0).length} series with new findings; mail.txt, report.html, kcidb.json in ${result.outDir}; exit ${code}`);
  return code;
}
