// The options of `daxpin run` that one daxpin hands another (the VM runner starts
// `daxpin run --device` in each guest): their defaults, and the argv that carries them.
// The CLI declares its options with these defaults, and the host's watchdogs derive
// the time a guest's case may take from them, so the two cannot drift apart.
import { MatrixName } from './cases/matrix';
import { HoldMode } from './engine/hold';

export const RUN_DEFAULTS = {
  matrix: 'default' as MatrixName,
  /** The longest a pin is held; with holdMode 'evidence' it is released once the op is seen asleep for dwellMs. */
  holdMs: 200,
  holdMode: 'evidence' as HoldMode,
  dwellMs: 25,
  settleMs: 2000,
  canaryKb: 1024,
  /** Per-case time besides hold, settle and the signal wait before a worker is abandoned. */
  caseBudgetMs: 60_000,
  /** How long a blocked op gets after a signal before it counts as hung. */
  signalWaitMs: 1000,
};

/** The longest a case may take besides its hold and settle before the orchestrator abandons it. */
export const CASE_ALLOWANCE_MS = RUN_DEFAULTS.caseBudgetMs + RUN_DEFAULTS.signalWaitMs;

/** A `daxpin run --device` as the VM runner starts it in a guest, resuming where an earlier boot stopped. */
export interface DeviceRun {
  device: string;
  /** This boot's JSONL, on the results share. */
  out: string;
  runId: string;
  /** Plan keys earlier boots ran or crashed on. */
  skipFile: string;
  /** Where the guest names the case (or `<config>/`) running now. */
  inflight: string;
  matrix: MatrixName;
  holdMs: number;
  holdMode?: HoldMode;
  dwellMs?: number;
  settleMs: number;
  canaryKb?: number;
  /** Runs of each case (`run --repeat`). */
  repeat?: number;
  configs: string[];
  cases?: string[];
}

/** The arguments after `daxpin` (the host writes the run and end records itself: --no-run-record). */
export function deviceRunArgv(o: DeviceRun): string[] {
  return [
    'run',
    '--device',
    o.device,
    '--out',
    o.out,
    '--run-id',
    o.runId,
    '--skip-file',
    o.skipFile,
    '--inflight',
    o.inflight,
    // The results share is 9p without a cache: each write reaches the host as it returns.
    '--written-through',
    '--no-run-record',
    // A guest is booted for the run: its whole kernel log, from boot, is the run's.
    '--kernel-log-from',
    'boot',
    // KTAP on the serial console as cases finish, for kernel CI parsers reading it.
    '--ktap-console',
    '--matrix',
    o.matrix,
    '--hold-ms',
    String(o.holdMs),
    ...(o.holdMode !== undefined ? ['--hold-mode', o.holdMode] : []),
    ...(o.dwellMs !== undefined ? ['--dwell-ms', String(o.dwellMs)] : []),
    '--settle-ms',
    String(o.settleMs),
    ...(o.canaryKb !== undefined ? ['--canary-kb', String(o.canaryKb)] : []),
    ...(o.repeat !== undefined && o.repeat > 1 ? ['--repeat', String(o.repeat)] : []),
    ...o.configs.flatMap((c) => ['--config', c]),
    ...(o.cases ?? []).flatMap((g) => ['--cases', g]),
  ];
}
