// A run: plan the cases of each config, prepare the config, hand the cases to
// the orchestrator, and write every record to JSONL as soon as it exists.
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { Case, Config, MatrixName, casesFor, filterCases } from '../cases/matrix';
import { CaseRecord, ConfigRecord, KernelLogRecord, Provenance, RunLine, SCHEMA_VERSION, planKey } from '../outcome';
import { readBootProvenance, readProvenance } from '../host/provenance';
import { configRecord, endRecord, runRecord } from '../record';
import { PreparedConfig } from '../configs/setup';
import { abortFuseConnectionsFor, register } from '../host/lifecycle';
import { KernelLog, readTainted, toKernelLogLines } from './kmsg';
import { CaseTiming, Orchestrator } from './orchestrator';

/** Where records go as they are made: one JSON line each (host/durable.ts writes them). */
export interface RecordSink {
  write(line: RunLine): void;
}

export interface ConfigSource {
  config: Config;
  /** Formats/mounts (or adopts) the filesystem for this config. */
  prepare(): Promise<PreparedConfig>;
}

export type Progress =
  | { kind: 'config'; config: string; daxVerified: boolean; error?: string }
  | { kind: 'case'; index: number; total: number; record: CaseRecord; elapsedMs: number };

export interface RunOptions {
  sources: ConfigSource[];
  matrix: MatrixName;
  globs?: string[];
  timing: CaseTiming;
  out: RecordSink;
  workDir: string;
  runner: 'native' | 'vm';
  argv: string[];
  runId?: string;
  /** Plan keys ("config/caseId") to leave out because an earlier boot already ran them. */
  skip?: Set<string>;
  /** Whether to write the run header (a resumed guest run appends to an existing file). */
  writeRunRecord?: boolean;
  shouldStop: () => boolean;
  /** Where the run's kernel log starts: 'boot' in a guest booted for the run, else 'run-start'. */
  kernelLogFrom?: Provenance['kernelLogFrom'];
  /** Called with the plan key right before a case starts (the VM runner's in-flight marker). */
  onCaseStart?: (key: string) => void;
  /** Called with the config name right before its set-up (mkfs, mount) starts. */
  onConfigStart?: (config: string) => void;
  onProgress?: (p: Progress) => void;
  /** Runs of each case (`--repeat`), each on fresh files; records carry `repeat` when above 1. */
  repeat?: number;
}

export interface RunSummary {
  runId: string;
  planned: string[];
  cases: CaseRecord[];
  configs: ConfigRecord[];
  /** Kernel log outside the cases, as written. */
  kernelLogs: KernelLogRecord[];
  notRun: string[];
  interrupted: boolean;
  wallMs: number;
}

/**
 * Why a run's results are in doubt: what daxpin itself failed to do, never an answer
 * of the kernel. A non-empty list makes the run exit 3 (when no invariant failed).
 */
export function runDoubts(s: Pick<RunSummary, 'planned' | 'cases' | 'configs' | 'notRun' | 'interrupted'>): string[] {
  const out: string[] = [];
  const count = (status: CaseRecord['status']) => s.cases.filter((c) => c.status === status).length;
  const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  if (count('error') > 0) out.push(`${plural(count('error'), 'case')} daxpin could not measure (status error)`);
  if (count('abandoned') > 0) out.push(`${plural(count('abandoned'), 'case')} abandoned with their worker`);
  if (count('crashed') > 0) out.push(`${plural(count('crashed'), 'case')} crashed the kernel`);
  const faulty = s.cases.filter((c) => (c.harnessFaults?.length ?? 0) > 0);
  if (faulty.length > 0) out.push(`${plural(faulty.length, 'case')} with a harness fault (${faulty[0].config}/${faulty[0].caseId}: ${faulty[0].harnessFaults![0]})`);
  for (const c of s.configs) if (c.error) out.push(`config ${c.config} was not set up: ${c.error}`);
  if (s.planned.length > 0 && s.cases.length === 0) out.push('no case ran');
  else if (s.notRun.length > 0 && !s.interrupted) out.push(`${plural(s.notRun.length, 'planned case')} not run`);
  return out;
}

export function newRunId(): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

/** The cases of each config, in run order; a source needs only its config to be planned. */
export function plan<S extends { config: Config }>(sources: S[], matrix: MatrixName, globs?: string[]): Array<{ source: S; cases: Case[] }> {
  return sources.map((source) => ({ source, cases: filterCases(casesFor(source.config, matrix), globs) }));
}

export async function runMatrix(o: RunOptions): Promise<RunSummary> {
  const t0 = performance.now();
  const runId = o.runId ?? newRunId();
  const identity = { runId, kernel: os.release(), host: os.hostname() };
  const planned = plan(o.sources, o.matrix, o.globs).map((p) => ({ ...p, cases: p.cases.filter((c) => !o.skip?.has(planKey(c.config.name, c.id))) }));
  const plannedKeys = planned.flatMap((p) => p.cases.map((c) => planKey(c.config.name, c.id)));
  const kernelLogFrom = o.kernelLogFrom ?? 'run-start';
  const kernelLog = new KernelLog(kernelLogFrom);
  const orchestrator = new Orchestrator(identity, o.timing, o.workDir, abortFuseConnectionsFor, kernelLog);
  // The worker (a node process, and its FUSE peer) starts while the run record's
  // provenance is read: its tools, git and dpkg take seconds in a slow VM.
  if (planned.some((p) => p.cases.length > 0) && !o.shouldStop()) orchestrator.warmUp();
  if (o.writeRunRecord !== false) {
    const provenance = readProvenance(kernelLogFrom);
    o.out.write(
      runRecord({
        ...identity,
        argv: o.argv,
        holdMs: o.timing.holdMs,
        holdMode: o.timing.holdMode,
        dwellMs: o.timing.dwellMs,
        settleMs: o.timing.settleMs,
        planned: plannedKeys,
        runner: o.runner,
        provenance,
      }),
    );
  } else {
    // A resumed run (a guest boot appending to the host's run file): what this boot is.
    o.out.write({ record: 'boot', schema: SCHEMA_VERSION, runId, kernel: identity.kernel, provenance: readBootProvenance(kernelLogFrom) });
  }
  const summary: RunSummary = { runId, planned: plannedKeys, cases: [], configs: [], kernelLogs: [], notRun: [], interrupted: false, wallMs: 0 };
  let ended = false;
  // A fatal signal writes the end record from its teardown while this loop may still
  // be running: nothing may follow the end record.
  const write = (line: CaseRecord | ConfigRecord | KernelLogRecord) => {
    if (!ended) o.out.write(line);
  };
  // Every kernel line outside a case goes to the file too, with where it fell.
  let tainted = readTainted();
  let lastCase: string | null = null;
  const flushKernelLog = (phase: KernelLogRecord['phase'], config: string | null, before: string | null) => {
    const { lines, dropped } = toKernelLogLines(kernelLog.take());
    const now = readTainted();
    if (lines.length > 0 || now !== tainted) {
      const rec: KernelLogRecord = {
        record: 'kernel-log',
        schema: SCHEMA_VERSION,
        runId,
        kernel: identity.kernel,
        phase,
        config,
        after: lastCase,
        before,
        lines,
        ...(dropped > 0 ? { dropped } : {}),
        taintedBefore: tainted,
        taintedAfter: now,
      };
      write(rec);
      summary.kernelLogs.push(rec);
    }
    tainted = now;
  };
  const writeEnd = (interrupted: boolean) => {
    if (ended) return;
    ended = true;
    const done = new Set(summary.cases.map((c) => planKey(c.config, c.caseId)));
    summary.notRun = plannedKeys.filter((k) => !done.has(k));
    summary.interrupted = interrupted;
    summary.wallMs = Math.round(performance.now() - t0);
    flushKernelLog('run-end', null, null);
    o.out.write(endRecord(runId, summary.notRun, interrupted));
  };
  // Registered first, so on a fatal signal it runs last: after the worker is gone
  // and the filesystems are unmounted, every result so far is already on disk.
  const unregisterEnd = register('daxpin end record', () => writeEnd(true));
  const repeat = o.repeat ?? 1;
  const total = plannedKeys.length * repeat;
  flushKernelLog('run-start', null, null);
  try {
    for (const { source, cases } of planned) {
      if (cases.length === 0) continue;
      if (o.shouldStop()) break;
      let prepared: PreparedConfig;
      try {
        o.onConfigStart?.(source.config.name);
        prepared = await source.prepare();
        flushKernelLog('setup', source.config.name, null);
      } catch (e) {
        // Stopping undoes a set-up in progress: that is no set-up error.
        if (o.shouldStop()) break;
        flushKernelLog('setup', source.config.name, null);
        const rec = configRecord(identity, source.config, null, { error: e instanceof Error ? e.message : String(e) });
        write(rec);
        summary.configs.push(rec);
        o.onProgress?.({ kind: 'config', config: source.config.name, daxVerified: false, error: rec.error });
        continue;
      }
      o.onProgress?.({ kind: 'config', config: source.config.name, daxVerified: prepared.daxVerified });
      let clean = true;
      try {
        for (const c of cases.flatMap((one) => Array.from({ length: repeat }, (_, r) => ({ ...one, r })))) {
          if (o.shouldStop()) break;
          const key = planKey(c.config.name, c.id);
          flushKernelLog('between-cases', c.config.name, key);
          o.onCaseStart?.(key);
          const record = await orchestrator.runCase(c, prepared.testDir, prepared.pmdExtentHint, prepared.mount);
          if (repeat > 1) record.repeat = c.r;
          lastCase = key;
          // The case read the taint around itself: a bit it saw appear is its own, not the gap's.
          if (record.taintedAfter !== null) tainted = record.taintedAfter;
          // Stopping kills the worker: a case cut short by that did not run; it is no error.
          if (o.shouldStop() && record.status !== 'done') break;
          write(record);
          summary.cases.push(record);
          if (record.status !== 'done' && record.status !== 'unsupported') clean = false;
          o.onProgress?.({ kind: 'case', index: summary.cases.length, total, record, elapsedMs: performance.now() - t0 });
        }
      } finally {
        // The worker keeps nothing open on the filesystem between cases, so it serves
        // the next config too (node starts are slow under TCG). After a case that did not
        // finish cleanly it may still hold files there: then it goes before the unmount.
        if (!clean || o.shouldStop()) await orchestrator.close();
        flushKernelLog('between-cases', source.config.name, null);
        const { fsck, cleanupErrors } = await prepared.teardown();
        flushKernelLog('teardown', source.config.name, null);
        const rec = configRecord(identity, source.config, prepared, { fsck, cleanupErrors });
        // Stopping (a fatal signal) tears the config down concurrently from the signal
        // handler: this teardown's fsck result would be about that race, not the fs.
        if (!o.shouldStop()) {
          write(rec);
          summary.configs.push(rec);
        }
      }
    }
  } finally {
    await orchestrator.close();
    writeEnd(o.shouldStop());
    unregisterEnd();
  }
  return summary;
}
