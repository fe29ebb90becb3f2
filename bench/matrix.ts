// Whole default matrix time: natively per config (`daxpin run --scratch`), and every
// kernel series in TCG guests in one `daxpin vm --kernel all` (left out with
// DAXPIN_BENCH_VM=0); `guests` compares the guests' shapes on the same kernels. Natively each
// config runs twice: with the default hold (the real time), and with a 1 ms hold
// (the per-case cost with nothing hidden under the hold).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compareRuns } from '../lib/report/compare';
import { readRun } from '../lib/report/runfile';
import { KernelOutcome } from '../lib/vm/kernel-run';
import { BenchResult, requireRoot, round } from './common';
import { CliRun, overheadPerCaseMs, readJsonl, runCli, runTimes, RunTimes } from './cli-run';

export const MATRIX_CONFIGS = ['tmpfs', 'ext4', 'xfs'];
/** Issue 16: every series in one command ≤ 12 min; ≤ 100 s of guest time per kernel; boot to first result ≤ 6 s. */
const ALL_SERIES_TARGET_S = 720;
const KERNEL_TARGET_S = 100;
const FIRST_RESULT_TARGET_S = 6;
/** Defaults of `daxpin run` (lib/cli.ts); read back from the run record when present. */
const DEFAULT_SETTLE_MS = 2000;
const SIGNAL_WAIT_MS = 1000;

export interface NativeConfigRun {
  config: string;
  /** With the default hold. */
  full: { run: CliRun; times: RunTimes; holdMs: number; lines: ReturnType<typeof readJsonl> };
  /** With a 1 ms hold. */
  quick: { run: CliRun; times: RunTimes };
}

async function runConfig(config: string, workDir: string, holdMs: number | null): Promise<{ run: CliRun; times: RunTimes; holdMs: number; lines: ReturnType<typeof readJsonl> }> {
  const out = path.join(workDir, `matrix-${config}-${holdMs ?? 'default'}.jsonl`);
  const args = ['run', '--scratch', '--config', config, '--out', out, ...(holdMs === null ? [] : ['--hold-ms', String(holdMs)])];
  const run = await runCli(args);
  if (!fs.existsSync(out)) throw new Error(`daxpin ${args.join(' ')} wrote nothing (exit ${run.exitCode}): ${run.stderrTail}`);
  const lines = readJsonl(out);
  const runRecord = lines.find((l) => l.record === 'run');
  return { run, times: runTimes(lines), holdMs: runRecord && runRecord.record === 'run' ? runRecord.holdMs : NaN, lines };
}

export async function matrixNative(configs: string[]): Promise<{ result: BenchResult; runs: NativeConfigRun[] }> {
  requireRoot('matrix');
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'daxpin-bench-matrix-'));
  const runs: NativeConfigRun[] = [];
  try {
    for (const config of configs) {
      process.stderr.write(`bench matrix: ${config}, default hold ...\n`);
      const full = await runConfig(config, workDir, null);
      process.stderr.write(`bench matrix: ${config}, 1 ms hold ...\n`);
      const quick = await runConfig(config, workDir, 1);
      runs.push({ config, full, quick });
    }
  } finally {
    fs.rmSync(workDir, { recursive: true, force: true });
  }
  const rows = runs.map(({ config, full, quick }) => {
    const t = full.times;
    const afterLastCase = full.run.wallMs - (t.beforeFirstCaseMs ?? 0) - t.casesMs;
    return {
      config,
      cases: t.cases,
      wallS: round(full.run.wallMs / 1000),
      holdsS: round(t.holdsMs / 1000),
      beforeFirstS: round((t.beforeFirstCaseMs ?? NaN) / 1000, 2),
      afterLastS: round(afterLastCase / 1000, 2),
      overheadMs: round(overheadPerCaseMs(t, DEFAULT_SETTLE_MS, SIGNAL_WAIT_MS), 1),
      overheadMsHold1: round(overheadPerCaseMs(quick.times, DEFAULT_SETTLE_MS, SIGNAL_WAIT_MS), 1),
      blocked: t.blocked,
      hung: t.hung,
      notDone: t.notDone,
      exit: full.run.exitCode,
    };
  });
  const holdMs = runs[0]?.full.holdMs ?? NaN;
  return {
    runs,
    result: {
      bench: 'matrix.native',
      summary: {
        holdMs,
        configs: configs.join(','),
        totalWallS: round(runs.reduce((a, r) => a + r.full.run.wallMs, 0) / 1000),
      },
      rows,
      notes: [
        'wallS: daxpin run --scratch --config X as a child process, default matrix and hold (node start, mkfs, ballast, fsck included)',
        'holdsS: Σ min(op returned, hold) (the timeline holds until the op returns or the hold ends); overheadMs = (Σ case durationMs − holds − hung × (settle + signal wait)) / cases; overheadMsHold1: the same with --hold-ms 1, where no work hides under the hold',
      ],
    },
  };
}

interface VmRun {
  run: CliRun;
  outDir: string;
  kernels: KernelOutcome[];
}

/** One `daxpin vm` over `kernels` under TCG (`--jobs` when given), its results kept in a temp dir. */
async function vmRun(kernels: string[], jobs: number | null): Promise<VmRun> {
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'daxpin-bench-vm-'));
  const args = ['vm', ...kernels.flatMap((k) => ['--kernel', k]), '--accel', 'tcg', '--out-dir', outDir, ...(jobs === null ? [] : ['--jobs', String(jobs)])];
  process.stderr.write(`bench matrix.vm: daxpin ${args.join(' ')} ...\n`);
  const run = await runCli(args, 1000);
  const summary = path.join(outDir, 'vm-summary.json');
  const outcomes = fs.existsSync(summary) ? (JSON.parse(fs.readFileSync(summary, 'utf8')) as { kernels: KernelOutcome[] }).kernels : [];
  return { run, outDir, kernels: outcomes };
}

function kernelRows(r: VmRun): BenchResult['rows'] {
  return r.kernels.map((k) => {
    const lines = k.file ? readJsonl(k.file) : [];
    const t = runTimes(lines);
    return {
      kernel: k.release,
      wallS: round(k.wallMs / 1000),
      firstResultS: k.firstResultMs === null ? null : round(k.firstResultMs / 1000, 1),
      cases: k.recorded.length,
      holdsS: round(t.holdsMs / 1000),
      overheadMs: round(overheadPerCaseMs(t, DEFAULT_SETTLE_MS, SIGNAL_WAIT_MS)),
      crashed: k.crashed.length,
      notRun: k.notRun.length,
      boots: k.boots.length,
      error: k.error ?? '',
    };
  });
}

/**
 * Every kernel series in one `daxpin vm --kernel all` (guests in parallel as the default
 * --jobs has it): the wall time of all, each kernel's time, and boot to first result.
 */
export async function matrixVm(kernels: string[]): Promise<BenchResult> {
  requireRoot('matrix.vm');
  // DAXPIN_BENCH_JOBS: a shape other than the default --jobs.
  const r = await vmRun(kernels, process.env.DAXPIN_BENCH_JOBS ? Number(process.env.DAXPIN_BENCH_JOBS) : null);
  const rows = kernelRows(r);
  const walls = r.kernels.map((k) => k.wallMs);
  const firsts = r.kernels.flatMap((k) => (k.firstResultMs === null ? [] : [k.firstResultMs]));
  const worstKernel = walls.length ? Math.max(...walls) : NaN;
  const worstFirst = firsts.length ? Math.max(...firsts) : NaN;
  return {
    bench: 'matrix.vm',
    summary: { kernels: kernels.join(','), accel: 'tcg', allWallMin: round(r.run.wallMs / 60_000, 1), worstKernelS: round(worstKernel / 1000), worstFirstResultS: round(worstFirst / 1000, 1), exit: r.run.exitCode, results: r.outDir },
    rows,
    targets: [
      // The all-series target is for `--kernel all` only: fewer kernels in less time says nothing about it.
      ...(kernels.length === 1 && kernels[0] === 'all'
        ? [{ what: 'all series, one command', target: `<= ${ALL_SERIES_TARGET_S / 60} min`, measured: `${round(r.run.wallMs / 60_000, 1)} min`, met: r.run.wallMs <= ALL_SERIES_TARGET_S * 1000 }]
        : []),
      { what: 'per kernel (guest time)', target: `<= ${KERNEL_TARGET_S} s`, measured: `${round(worstKernel / 1000)} s (worst)`, met: worstKernel <= KERNEL_TARGET_S * 1000 },
      { what: 'boot to first result', target: `<= ${FIRST_RESULT_TARGET_S} s`, measured: `${round(worstFirst / 1000, 1)} s (worst)`, met: worstFirst <= FIRST_RESULT_TARGET_S * 1000 },
    ],
    notes: [
      'allWall: the whole `daxpin vm` (kernels resolved from the cache, initramfs, every boot, every config); wallS per kernel: its run file opened → closed (vm-summary.json); firstResultS: that start → its first case line on the host',
    ],
  };
}

/**
 * The same kernels as 1 guest × 2 vCPUs (`--jobs 1`) and as 2 guests × 1 vCPU (`--jobs 2`):
 * which shape finishes the work sooner, and whether the guests' outcomes agree case by case.
 */
export async function guestShapes(kernels: string[]): Promise<BenchResult> {
  requireRoot('guests');
  const rows: BenchResult['rows'] = [];
  const runs: Record<string, VmRun> = {};
  for (const jobs of [1, 2]) {
    const r = await vmRun(kernels, jobs);
    runs[jobs] = r;
    rows.push({ shape: `${jobs} guest(s) × ${2 / jobs} vCPU`, wallS: round(r.run.wallMs / 1000), ...Object.fromEntries(r.kernels.map((k) => [k.release, round(k.wallMs / 1000)])), exit: r.run.exitCode });
  }
  const differing = runs[1].kernels.map((k) => {
    const other = runs[2].kernels.find((o) => o.release === k.release);
    if (!k.file || !other?.file) return `${k.release}: missing`;
    const cmp = compareRuns(readRun(k.file), readRun(other.file));
    return `${k.release}: ${cmp.changes.length} case(s) differ, ${cmp.regressions.length} regression(s)`;
  });
  return {
    bench: 'guests',
    summary: { kernels: kernels.join(','), faster: Number(rows[0].wallS) <= Number(rows[1].wallS) ? '1 guest × 2 vCPU' : '2 guests × 1 vCPU', results: `${runs[1].outDir} ${runs[2].outDir}` },
    rows,
    notes: [`outcomes, 2 guests × 1 vCPU against 1 × 2: ${differing.join('; ')}`],
  };
}
