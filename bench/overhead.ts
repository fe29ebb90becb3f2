// Per-case overhead of non-blocking cases run natively: daxpin's engine (in this
// process, as the CLI drives it) against bench/baseline.c making the same syscalls,
// interleaved case by case on the same filesystem. Both use a tiny hold, which is
// subtracted; what is left is each one's cost of a case.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Case, casesFor, findConfig } from '../lib/cases/matrix';
import { abortFuseConnectionsFor } from '../lib/host/lifecycle';
import { PreparedConfig, prepareScratch } from '../lib/configs/setup';
import { DurableLines } from '../lib/host/durable';
import { CaseTiming, Orchestrator } from '../lib/engine/orchestrator';
import { KernelLog } from '../lib/engine/kmsg';
import { newRunId } from '../lib/engine/run';
import { BaselineServer } from './baseline-server';
import { BenchResult, CLI, buildBaseline, median, requireRoot, round, sum, timeCommand } from './common';

/** The non-blocking subset bench/baseline.c implements. */
export const OVERHEAD_PINS = ['none', 'vmsplice', 'uring-fixed'];
export const OVERHEAD_OPS = ['truncate-shrink', 'truncate-zero', 'punch-hole'];
export const OVERHEAD_MAPPINGS = ['pte-shared', 'pte-shared-unmapped', 'pmd-shared'];
export const OVERHEAD_CONFIGS = ['tmpfs', 'ext4'];
export const RATIO_TARGET = 1.5;

export interface OverheadOptions {
  reps: number;
  holdMs: number;
  canaryKb: number;
  configs: string[];
}

export function overheadCases(config: string): Case[] {
  return casesFor(findConfig(config)!, 'full').filter(
    (c) => OVERHEAD_PINS.includes(c.pinMethod.name) && OVERHEAD_OPS.includes(c.layoutOp.name) && OVERHEAD_MAPPINGS.includes(c.mapping.name),
  );
}

interface Sample {
  daxpinMs: number[];
  /** Of daxpinMs: writing the record to JSONL (write + fsync), as the CLI does per case. */
  jsonlMs: number[];
  baselineMs: number[];
  daxpinCanaries: number[];
  baselineCanaries: number[];
  blocked: number;
  errors: string[];
}

export async function overhead(o: OverheadOptions): Promise<BenchResult[]> {
  requireRoot('overhead');
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'daxpin-bench-'));
  try {
    const startup = nodeStartup();
    const binary = buildBaseline(workDir);
    const results: BenchResult[] = [startup];
    for (const name of o.configs) results.push(await overheadOn(name, binary, workDir, o));
    return results;
  } finally {
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}

/** What the CLI pays once per run before the first case, outside the per-case numbers. */
function nodeStartup(): BenchResult {
  const n = 7;
  const nodeOnly = timeCommand([process.execPath, '-e', '0'], n);
  const cliList = timeCommand([process.execPath, CLI, 'list', '--json'], n);
  const cBinary = timeCommand(['/bin/true'], n);
  const rows = [
    { what: 'node -e 0', medianMs: round(median(nodeOnly)), minMs: round(Math.min(...nodeOnly)) },
    { what: 'node dist/lib/cli.js list --json', medianMs: round(median(cliList)), minMs: round(Math.min(...cliList)) },
    { what: '/bin/true (a C process)', medianMs: round(median(cBinary)), minMs: round(Math.min(...cBinary)) },
  ];
  return {
    bench: 'overhead.startup',
    summary: { nodeStartMs: round(median(nodeOnly)), cliLoadMs: round(median(cliList)), processStartMs: round(median(cBinary)), runs: n },
    rows,
    notes: ['paid once per run (per boot in a guest); the worker start is measured per config in the overhead rows'],
  };
}

async function overheadOn(configName: string, binary: string, workDir: string, o: OverheadOptions): Promise<BenchResult> {
  const config = findConfig(configName);
  if (!config) throw new Error(`unknown config ${configName}`);
  const tPrep = performance.now();
  const prepared: PreparedConfig = await prepareScratch(config, { workDir });
  const prepMs = performance.now() - tPrep;
  const timing: CaseTiming = { holdMs: o.holdMs, holdMode: 'evidence', dwellMs: 25, settleMs: 2000, signalWaitMs: 1000, caseBudgetMs: 60_000, canaryBytes: o.canaryKb * 1024 };
  const orchestrator = new Orchestrator({ runId: newRunId(), kernel: os.release(), host: os.hostname() }, timing, workDir, abortFuseConnectionsFor, new KernelLog('run-start'));
  // Both write their results next to each other, in the work directory (not the filesystem under test).
  const baseline = new BaselineServer(binary, prepared.testDir, o.holdMs, o.canaryKb * 1024, path.join(workDir, `baseline-${configName}.results`));
  const out = new DurableLines(path.join(workDir, `overhead-${configName}.jsonl`), 'create');
  const cases = overheadCases(configName);
  const samples = new Map<string, Sample>(cases.map((c) => [c.id, { daxpinMs: [], jsonlMs: [], baselineMs: [], daxpinCanaries: [], baselineCanaries: [], blocked: 0, errors: [] }]));
  let workerStartMs = NaN;
  try {
    // The first case pays for the worker (node, the FUSE peer, its mount): measured apart.
    const t0 = performance.now();
    await orchestrator.runCase(cases[0], prepared.testDir, prepared.pmdExtentHint);
    const firstCaseMs = performance.now() - t0;
    await baseline.run(cases[0].id);
    const warm = performance.now();
    await orchestrator.runCase(cases[0], prepared.testDir, prepared.pmdExtentHint);
    workerStartMs = firstCaseMs - (performance.now() - warm);

    for (let rep = 0; rep < o.reps; rep++) {
      for (const c of cases) {
        const s = samples.get(c.id)!;
        // Alternate who goes first so neither always runs on a cache the other warmed.
        const order = rep % 2 === 0 ? ['daxpin', 'baseline'] : ['baseline', 'daxpin'];
        for (const who of order) {
          if (who === 'daxpin') {
            const a = performance.now();
            const rec = await orchestrator.runCase(c, prepared.testDir, prepared.pmdExtentHint);
            const b = performance.now();
            out.writeLine(JSON.stringify(rec));
            const e = performance.now();
            s.daxpinMs.push(e - a);
            s.jsonlMs.push(e - b);
            s.daxpinCanaries.push(rec.canary.files);
            if (rec.op.blockedUntilRelease) s.blocked++;
            if (rec.status !== 'done') s.errors.push(`${rec.status}: ${rec.error ?? ''}`);
          } else {
            const r = await baseline.run(c.id);
            s.baselineMs.push(r.ms);
            s.baselineCanaries.push(r.canaryFiles);
          }
        }
      }
    }
  } finally {
    out.close();
    await baseline.close();
    await orchestrator.close();
    await prepared.teardown();
  }

  const hold = o.holdMs;
  const rows = cases.map((c) => {
    const s = samples.get(c.id)!;
    const d = median(s.daxpinMs) - hold;
    const b = median(s.baselineMs) - hold;
    return {
      case: c.id,
      daxpinMs: round(d, 2),
      jsonlMs: round(median(s.jsonlMs), 2),
      baselineMs: round(b, 2),
      ratio: round(d / b, 2),
      canaries: `${median(s.daxpinCanaries)}/${median(s.baselineCanaries)}`,
      blocked: s.blocked,
      errors: s.errors.length ? s.errors[0] : '',
    };
  });
  const dSum = sum(cases.map((c) => median(samples.get(c.id)!.daxpinMs) - hold));
  const bSum = sum(cases.map((c) => median(samples.get(c.id)!.baselineMs) - hold));
  const ratio = dSum / bSum;
  const mismatched = rows.filter((r) => r.canaries.split('/')[0] !== r.canaries.split('/')[1]).length;
  const notes = [
    `hold ${hold} ms subtracted from both; canaries ${o.canaryKb} KiB; ${o.reps} reps, medians; rows in the order run`,
    'daxpinMs = Orchestrator.runCase + JSONL write (fsync) per case, in this process; jsonlMs is the JSONL part',
    'canaries = canary files written by daxpin/baseline (they differ when the op was not done within the hold)',
  ];
  if (mismatched) notes.push(`${mismatched} rows did different canary work in daxpin and the baseline`);
  if (rows.some((r) => r.blocked > 0)) notes.push('some cases blocked until release: they are not overhead-only');
  return {
    bench: `overhead.${configName}`,
    summary: {
      config: configName,
      cases: cases.length,
      daxpinMsPerCase: round(dSum / cases.length, 2),
      baselineMsPerCase: round(bSum / cases.length, 2),
      ratio: round(ratio, 2),
      workerStartMs: round(workerStartMs),
      prepareMs: round(prepMs),
    },
    rows,
    targets: [{ what: `overhead ratio (${configName})`, target: `<= ${RATIO_TARGET}`, measured: String(round(ratio, 2)), met: ratio <= RATIO_TARGET }],
    notes,
  };
}
