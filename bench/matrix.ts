// Whole default matrix time: natively per config (`daxpin run --scratch`), and per
// kernel in a TCG guest (`daxpin vm`; left out with DAXPIN_BENCH_VM=0). Natively each
// config runs twice: with the default hold (the real time), and with a 1 ms hold
// (the per-case cost with nothing hidden under the hold).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CaseRecord } from '../lib/outcome';
import { BenchResult, requireRoot, round } from './common';
import { CliRun, overheadPerCaseMs, readJsonl, runCli, runTimes, RunTimes } from './cli-run';

export const MATRIX_CONFIGS = ['tmpfs', 'ext4', 'xfs'];
/** Issue 6: whole default matrix ≤ 6 min per kernel under TCG, default hold. */
export const TCG_MATRIX_TARGET_S = 360;
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

/** `daxpin vm` per kernel under TCG, one kernel after the other (one qemu at a time). */
export async function matrixVm(kernels: string[]): Promise<BenchResult> {
  requireRoot('matrix.vm');
  const rows: BenchResult['rows'] = [];
  for (const spec of kernels) {
    const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'daxpin-bench-vm-'));
    process.stderr.write(`bench matrix.vm: daxpin vm --kernel ${spec} --accel tcg (results in ${outDir}) ...\n`);
    const run = await runCli(['vm', '--kernel', spec, '--accel', 'tcg', '--out-dir', outDir], 1000);
    const file = fs.readdirSync(outDir).find((f) => f.endsWith('.jsonl'));
    if (!file) {
      rows.push({ kernel: spec, wallS: round(run.wallMs / 1000), cases: 0, exit: run.exitCode, error: run.stderrTail });
      continue;
    }
    const lines = readJsonl(path.join(outDir, file));
    const t = runTimes(lines);
    const release = file.replace(/\.jsonl$/, '');
    const boots = fs.existsSync(path.join(outDir, release)) ? fs.readdirSync(path.join(outDir, release)).filter((f) => /^boot-\d+\.console\.log$/.test(f)).length : 0;
    const cases = lines.filter((l): l is CaseRecord => l.record === 'case');
    rows.push({
      kernel: release,
      wallS: round(run.wallMs / 1000),
      wallMin: round(run.wallMs / 60_000, 1),
      cases: t.cases,
      holdsS: round(t.holdsMs / 1000),
      overheadMs: round(overheadPerCaseMs(t, DEFAULT_SETTLE_MS, SIGNAL_WAIT_MS)),
      beforeFirstS: round((t.beforeFirstCaseMs ?? NaN) / 1000),
      hung: t.hung,
      blocked: t.blocked,
      crashed: cases.filter((c) => c.status === 'crashed').length,
      boots,
      exit: run.exitCode,
      results: outDir,
    });
  }
  const worst = Math.max(...rows.map((r) => Number(r.wallS)));
  return {
    bench: 'matrix.vm',
    summary: { kernels: kernels.join(','), accel: 'tcg', worstWallMin: round(worst / 60, 1) },
    rows,
    targets: [{ what: 'default matrix per kernel under TCG', target: `<= ${TCG_MATRIX_TARGET_S / 60} min`, measured: `${round(worst / 60, 1)} min (worst kernel)`, met: worst <= TCG_MATRIX_TARGET_S }],
    notes: ['wall: the whole `daxpin vm` per kernel (initramfs build on first use, boots, every config, the host copying results); results are kept in the listed directories'],
  };
}
