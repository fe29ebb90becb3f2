// The JSONL schema: the source of truth that every report is made from.
// One JSON object per line; `record` says which kind of line it is.
// Every value in a CaseRecord is measured on the running kernel; nothing here is
// ever filled from a table of expectations.

export const SCHEMA_VERSION = 1;

/** What a view (pinned buffer, pipe, file, peer file) holds after the case. */
export type ViewClass =
  | 'original' // this file's bytes as they were before the case
  | 'written' // bytes written during the case (by the pin's I/O peer or through the mapping)
  | 'zero' // all zero bytes
  | 'foreign' // another file's bytes (a canary or a peer file): a freed block reused
  | 'mixed' // more than one of the above
  | 'garbage' // bytes that match no pattern daxpin wrote
  | 'n/a'; // this view does not exist for the case (no pipe, file gone, ...)

export type HungState = null | 'interruptible' | 'uninterruptible';

export interface SyscallResult {
  ok: boolean;
  /** Node-style error code such as 'EOPNOTSUPP'; null when ok. */
  errno: string | null;
}

export interface OpResult extends SyscallResult {
  /** Whether the op was started at all (false when the pin or map step failed hard). */
  started: boolean;
  /** ms from op start to its return; null if it never returned. */
  returnedMs: number | null;
  /** true when the op returned only after the pin was released. */
  blockedUntilRelease: boolean;
  /** ms from the pin's release to the op's return; null when it returned before the release or never. */
  afterReleaseMs: number | null;
  /** Set when the op did not return within settle time after release. */
  hung: HungState;
  /** Kernel task state letter of the op thread when it was found stuck (e.g. 'D', 'S'). */
  taskState: string | null;
  /** /proc/<pid>/task/<tid>/stack of the stuck op thread, when readable. */
  stack: string[] | null;
}

export interface Views {
  /** The pinned range read through the mapping (or, when unmapped, a fresh mapping) after release. */
  buffer: ViewClass;
  /** The bytes drained from the vmsplice pipe after the op. */
  pipe: ViewClass;
  /** The pinned range of the file read with pread after release. */
  file: ViewClass;
  /** The op's second file (clone source/destination, dedupe peer, copy source), read after release. */
  peer: ViewClass;
  /** What the canary files written after the op hold afterwards ('original' = their own bytes). */
  canary: ViewClass;
}

export interface KernelLogLine {
  /** syslog level 0..7 */
  level: number;
  /** Normalised text: addresses, pids, timestamps, comm names removed, so kernels compare equal. */
  signature: string;
  /** The raw line. */
  text: string;
}

export type CaseStatus =
  | 'done' // the timeline ran to the end
  | 'error' // daxpin could not set the case up (the reason is in `error`)
  | 'crashed' // the kernel panicked or wedged while the case ran (console excerpt attached)
  | 'abandoned' // the worker had to be abandoned (stuck in D state); fields hold what was seen
  | 'unsupported'; // the case's pin or op cannot exist here (no nbd module, no RDMA device ...): `reason` says why

export interface CaseRecord {
  record: 'case';
  schema: number;
  runId: string;
  caseId: string;
  kernel: string;
  host: string;
  config: string;
  fsType: string;
  /** statx STATX_ATTR_DAX on the test file (false on page-cache configs). */
  daxVerified: boolean;
  mapping: string;
  /** true/false when a PMD fault was observed or not (tracepoint); null when it cannot be observed. */
  pmd: boolean | null;
  pinMethod: string;
  layoutOp: string;
  holdMs: number;
  settleMs: number;
  status: CaseStatus;
  map: SyscallResult;
  pin: SyscallResult;
  op: OpResult;
  views: Views;
  /** Where a SIGBUS was taken on access after the op, e.g. ['buffer']. Empty: none. */
  sigbus: string[];
  /** The pin's own completion after release (the I/O returned, the pipe drained ...). */
  release: SyscallResult & { ms: number | null };
  kernelLog: KernelLogLine[];
  taintedBefore: number | null;
  taintedAfter: number | null;
  /** Canary files written after the op into space the op may have freed. */
  canary: { files: number; bytes: number };
  startedAt: string;
  durationMs: number;
  error?: string;
  /** For unsupported cases: why the case does not apply here. */
  reason?: string;
  /** Set-up steps that did not go as asked (e.g. no extent size hint on this fs). */
  notes?: string[];
  /** For crashed cases: the tail of the guest console. */
  console?: string;
}

export interface RunRecord {
  record: 'run';
  schema: number;
  runId: string;
  kernel: string;
  host: string;
  startedAt: string;
  /** The command line that produced this run, for reproduction. */
  argv: string[];
  holdMs: number;
  settleMs: number;
  /** Every case planned for this run, as "config/caseId". */
  planned: string[];
  runner: 'native' | 'vm';
  /** e.g. 'tcg' or 'kvm' for vm runs. */
  accel?: string;
}

export interface ConfigRecord {
  record: 'config';
  schema: number;
  runId: string;
  kernel: string;
  config: string;
  fsType: string;
  /** Whether the configuration's DAX mode was verified by statx on a probe file. */
  daxVerified: boolean;
  device: string | null;
  mountOptions: string;
  /** fsck after the config's cases; null when no fsck applies (tmpfs). */
  fsck: { tool: string; ok: boolean; exitCode: number; output: string } | null;
  /** Set when the config could not be set up (mkfs/mount failed, DAX unsupported ...). */
  error?: string;
}

export interface EndRecord {
  record: 'end';
  schema: number;
  runId: string;
  finishedAt: string;
  /** Planned cases that never produced a case record. */
  notRun: string[];
  interrupted: boolean;
  /** Why the run stopped before its plan was done (VM runner: init failed, no progress, --max-boots). */
  error?: string;
}

export type RunLine = RunRecord | CaseRecord | ConfigRecord | EndRecord;

/** What identifies a case record; everything else in it is measured. */
export type CaseIdentity = Pick<
  CaseRecord,
  'runId' | 'caseId' | 'kernel' | 'host' | 'config' | 'fsType' | 'mapping' | 'pinMethod' | 'layoutOp' | 'holdMs' | 'settleMs' | 'status' | 'startedAt' | 'durationMs'
>;

/**
 * A case record with every measured field at "not measured": the start of every
 * record (the orchestrator fills in what the worker saw; a crashed case keeps it).
 */
export function unmeasuredCase(id: CaseIdentity): CaseRecord {
  return {
    record: 'case',
    schema: SCHEMA_VERSION,
    ...id,
    daxVerified: false,
    pmd: null,
    map: { ok: false, errno: null },
    pin: { ok: false, errno: null },
    op: { ok: false, errno: null, started: false, returnedMs: null, blockedUntilRelease: false, afterReleaseMs: null, hung: null, taskState: null, stack: null },
    views: { buffer: 'n/a', pipe: 'n/a', file: 'n/a', peer: 'n/a', canary: 'n/a' },
    sigbus: [],
    release: { ok: false, errno: null, ms: null },
    kernelLog: [],
    taintedBefore: null,
    taintedAfter: null,
    canary: { files: 0, bytes: 0 },
  };
}

export function planKey(config: string, caseId: string): string {
  return `${config}/${caseId}`;
}
