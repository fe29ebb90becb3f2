// A run: plan the cases of each config, prepare the config, hand the cases to
// the orchestrator, and write every record to JSONL as soon as it exists.
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { Case, Config, MatrixName, casesFor, filterCases } from '../cases/matrix';
import { CaseRecord, ConfigRecord, RunRecord, SCHEMA_VERSION, planKey } from '../outcome';
import { PreparedConfig } from '../configs/setup';
import { abortFuseConnectionsFor, register } from '../host/lifecycle';
import { JsonlWriter } from './jsonl';
import { CaseTiming, Orchestrator } from './orchestrator';

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
  out: JsonlWriter;
  workDir: string;
  runner: 'native' | 'vm';
  argv: string[];
  runId?: string;
  /** Plan keys ("config/caseId") to leave out because an earlier boot already ran them. */
  skip?: Set<string>;
  /** Whether to write the run header (a resumed guest run appends to an existing file). */
  writeRunRecord?: boolean;
  shouldStop: () => boolean;
  /** Called with the plan key right before a case starts (the VM runner's in-flight marker). */
  onCaseStart?: (key: string) => void;
  /** Called with the config name right before its set-up (mkfs, mount) starts. */
  onConfigStart?: (config: string) => void;
  onProgress?: (p: Progress) => void;
}

export interface RunSummary {
  runId: string;
  planned: string[];
  cases: CaseRecord[];
  configs: ConfigRecord[];
  notRun: string[];
  interrupted: boolean;
  wallMs: number;
}

export function newRunId(): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

export function plan(sources: ConfigSource[], matrix: MatrixName, globs?: string[]): Array<{ source: ConfigSource; cases: Case[] }> {
  return sources.map((source) => ({ source, cases: filterCases(casesFor(source.config, matrix), globs) }));
}

export async function runMatrix(o: RunOptions): Promise<RunSummary> {
  const t0 = performance.now();
  const runId = o.runId ?? newRunId();
  const identity = { runId, kernel: os.release(), host: os.hostname() };
  const planned = plan(o.sources, o.matrix, o.globs).map((p) => ({ ...p, cases: p.cases.filter((c) => !o.skip?.has(planKey(c.config.name, c.id))) }));
  const plannedKeys = planned.flatMap((p) => p.cases.map((c) => planKey(c.config.name, c.id)));
  if (o.writeRunRecord !== false) {
    const run: RunRecord = {
      record: 'run',
      schema: SCHEMA_VERSION,
      ...identity,
      startedAt: new Date().toISOString(),
      argv: o.argv,
      holdMs: o.timing.holdMs,
      settleMs: o.timing.settleMs,
      planned: plannedKeys,
      runner: o.runner,
    };
    o.out.write(run);
  }
  const orchestrator = new Orchestrator(identity, o.timing, o.workDir, abortFuseConnectionsFor);
  const summary: RunSummary = { runId, planned: plannedKeys, cases: [], configs: [], notRun: [], interrupted: false, wallMs: 0 };
  let ended = false;
  // A fatal signal writes the end record from its teardown while this loop may still
  // be running: nothing may follow the end record.
  const write = (line: CaseRecord | ConfigRecord) => {
    if (!ended) o.out.write(line);
  };
  const writeEnd = (interrupted: boolean) => {
    if (ended) return;
    ended = true;
    const done = new Set(summary.cases.map((c) => planKey(c.config, c.caseId)));
    summary.notRun = plannedKeys.filter((k) => !done.has(k));
    summary.interrupted = interrupted;
    summary.wallMs = Math.round(performance.now() - t0);
    o.out.write({ record: 'end', schema: SCHEMA_VERSION, runId, finishedAt: new Date().toISOString(), notRun: summary.notRun, interrupted });
  };
  // Registered first, so on a fatal signal it runs last: after the worker is gone
  // and the filesystems are unmounted, every result so far is already on disk.
  const unregisterEnd = register('daxpin end record', () => writeEnd(true));
  const total = plannedKeys.length;
  if (planned.some((p) => p.cases.length > 0) && !o.shouldStop()) orchestrator.warmUp();
  try {
    for (const { source, cases } of planned) {
      if (cases.length === 0) continue;
      if (o.shouldStop()) break;
      let prepared: PreparedConfig;
      try {
        o.onConfigStart?.(source.config.name);
        prepared = await source.prepare();
      } catch (e) {
        // Stopping undoes a set-up in progress: that is no set-up error.
        if (o.shouldStop()) break;
        const rec = configRecord(identity, source.config, null, { error: e instanceof Error ? e.message : String(e) });
        write(rec);
        summary.configs.push(rec);
        o.onProgress?.({ kind: 'config', config: source.config.name, daxVerified: false, error: rec.error });
        continue;
      }
      o.onProgress?.({ kind: 'config', config: source.config.name, daxVerified: prepared.daxVerified });
      let clean = true;
      try {
        for (const c of cases) {
          if (o.shouldStop()) break;
          o.onCaseStart?.(planKey(c.config.name, c.id));
          const record = await orchestrator.runCase(c, prepared.testDir, prepared.pmdExtentHint, prepared.mount);
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
        const { fsck } = await prepared.teardown();
        const rec = configRecord(identity, source.config, prepared, { fsck });
        // Stopping (a fatal signal) tears the config down concurrently from the signal
        // handler: this teardown's fsck result would be about that race, not the fs.
        if (!o.shouldStop()) write(rec);
        summary.configs.push(rec);
      }
    }
  } finally {
    await orchestrator.close();
    writeEnd(o.shouldStop());
    unregisterEnd();
  }
  return summary;
}

function configRecord(
  id: { runId: string; kernel: string },
  config: Config,
  p: PreparedConfig | null,
  extra: { fsck?: ConfigRecord['fsck']; error?: string },
): ConfigRecord {
  return {
    record: 'config',
    schema: SCHEMA_VERSION,
    runId: id.runId,
    kernel: id.kernel,
    config: config.name,
    fsType: p?.fsType ?? config.fsType,
    daxVerified: p?.daxVerified ?? false,
    device: p?.device ?? null,
    mountOptions: p?.mountOptions ?? '',
    fsck: extra.fsck ?? null,
    ...(extra.error ? { error: extra.error } : {}),
  };
}
