// The run's header, config and end lines, built in one place for both runners: the
// native run (engine/run.ts) and the VM runner (vm/), which writes them on the host
// around what its guests recorded.
import { Config } from './cases/matrix';
import { ConfigRecord, EndRecord, RunRecord, SCHEMA_VERSION } from './outcome';

export function runRecord(o: Omit<RunRecord, 'record' | 'schema' | 'startedAt'> & { startedAt?: Date }): RunRecord {
  return {
    record: 'run',
    schema: SCHEMA_VERSION,
    runId: o.runId,
    kernel: o.kernel,
    host: o.host,
    startedAt: (o.startedAt ?? new Date()).toISOString(),
    argv: o.argv,
    holdMs: o.holdMs,
    ...(o.holdMode !== undefined ? { holdMode: o.holdMode, dwellMs: o.dwellMs } : {}),
    settleMs: o.settleMs,
    planned: o.planned,
    runner: o.runner,
    ...(o.accel !== undefined ? { accel: o.accel } : {}),
    ...(o.provenance !== undefined ? { provenance: o.provenance } : {}),
  };
}

/** What a config's set-up established; nothing of it when the set-up failed. */
export interface ConfigSetUp {
  fsType: string;
  daxVerified: boolean;
  device: string | null;
  mountOptions: string;
  superOptions: string;
  mkfs: string | null;
  geometry: string | null;
  daxNote: string | null;
}

export function configRecord(
  id: { runId: string; kernel: string },
  config: Config,
  setUp: Partial<ConfigSetUp> | null,
  extra: { fsck?: ConfigRecord['fsck']; error?: string; cleanupErrors?: string[] },
): ConfigRecord {
  return {
    record: 'config',
    schema: SCHEMA_VERSION,
    runId: id.runId,
    kernel: id.kernel,
    config: config.name,
    fsType: setUp?.fsType ?? config.fsType,
    daxVerified: setUp?.daxVerified ?? false,
    device: setUp?.device ?? null,
    mountOptions: setUp?.mountOptions ?? '',
    ...(setUp
      ? { superOptions: setUp.superOptions ?? '', mkfs: setUp.mkfs ?? null, geometry: setUp.geometry ?? null, daxNote: setUp.daxNote ?? null }
      : {}),
    ...(extra.cleanupErrors?.length ? { cleanupErrors: extra.cleanupErrors } : {}),
    fsck: extra.fsck ?? null,
    ...(extra.error ? { error: extra.error } : {}),
  };
}

export function endRecord(runId: string, notRun: string[], interrupted: boolean, error?: string | null): EndRecord {
  return {
    record: 'end',
    schema: SCHEMA_VERSION,
    runId,
    finishedAt: new Date().toISOString(),
    notRun,
    interrupted,
    ...(error ? { error } : {}),
  };
}
