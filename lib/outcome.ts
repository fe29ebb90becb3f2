// The JSONL schema: the source of truth that every report is made from.
// One JSON object per line; `record` says which kind of line it is.
// Every value in a CaseRecord is measured on the running kernel; nothing here is
// ever filled from a table of expectations.

// 2: observed blocking (op.wait, asleepAtRelease), syscall results, file facts, view
// details, the whole kernel log (kernel-log records), provenance, harness faults.
export const SCHEMA_VERSION = 2;

/** What a view (pinned buffer, pipe, file, peer file) holds after the case. */
export type ViewClass =
  | 'original' // this file's bytes as they were before the case
  | 'written' // bytes written during the case (by the pin's I/O peer or through the mapping)
  | 'zero' // all zero bytes
  | 'foreign' // another file's bytes (a canary or a peer file): a freed block reused
  | 'shifted' // this file's (or the op's peer's) bytes, but at another page index than their own
  | 'mixed' // more than one of the above
  | 'garbage' // bytes that match no pattern daxpin wrote
  | 'n/a'; // this view does not exist for the case (no pipe, file gone, ...)

export type HungState = null | 'interruptible' | 'uninterruptible' | 'woken-by-signal';

export interface SyscallResult {
  ok: boolean;
  /** Node-style error code such as 'EOPNOTSUPP'; null when ok. */
  errno: string | null;
}

/** The op's own thread seen asleep inside its syscall (sampled from /proc/self/task/TID). */
export interface ThreadWait {
  /** Task state letter: 'S' interruptible sleep, 'D' uninterruptible. */
  state: string;
  /** /proc/.../wchan: the function the thread sleeps in. */
  wchan: string | null;
  /** The kernel stack, function names only (offsets dropped), innermost first; [] when unreadable. */
  site: string[];
  /** ms from the op's entry into the syscall to the first sample at this site and state. */
  atMs: number;
}

export interface OpResult extends SyscallResult {
  /** Whether the op's syscall was entered at all (false when the pin or map step failed hard). */
  started: boolean;
  /** The syscall's return value when it succeeded (bytes copied for copy_file_range); null otherwise. */
  result: number | null;
  /** FIDEDUPERANGE's per-destination answer: 'same' or 'differs', and the bytes it deduped. */
  dedupe: { status: 'same' | 'differs'; bytesDeduped: number } | null;
  /** ms from the op's entry into the kernel to its return, timed on its own thread; null if it never returned. */
  returnedMs: number | null;
  /** The last wait of the op's thread seen while the pin was held; null: never seen asleep in its call. */
  wait: ThreadWait | null;
  /** The op's thread was asleep in its call when the pin was released. */
  asleepAtRelease: boolean;
  /** true only when the pin was held, the op's thread was asleep in its call at the release, and it returned after it. */
  blockedUntilRelease: boolean;
  /** ms from the pin's release to the op's return, when it returned after the release. */
  afterReleaseMs: number | null;
  /**
   * After release + settle the op had not returned and its thread was signalled:
   * 'interruptible' it then returned EINTR (because of the signal); 'uninterruptible' it
   * still had not returned; 'woken-by-signal' it then returned something else (the signal
   * woke a wait whose condition already held: nothing else had woken it, a lost wake-up);
   * null otherwise (not signalled: it finished within the settle).
   */
  hung: HungState;
  /** ms from the release to the signal, when the op's thread was signalled. */
  signalledAtMs: number | null;
  /** Task state letter of the op's thread when signalled (e.g. 'D', 'S'). */
  taskState: string | null;
  /** Kernel stack of the op's thread when signalled, when readable. */
  stack: string[] | null;
}

/** What the pinned file is, as the kernel reports it: stat and FIEMAP of the pinned range. */
export interface FileFacts {
  size: number;
  /** st_blocks, 512-byte units. */
  blocks: number;
  /** FIEMAP of the pinned range (bytes); null when the filesystem has no FIEMAP (tmpfs). */
  extents: Array<{ logical: number; physical: number; length: number; flags: number }> | null;
}

/** How a view's records were read back (see lib/cases/patterns.ts describeView). */
export interface ViewDetail {
  /** One letter per page: o original, w written, p peer, s shifted, z zero, f foreign, g garbage, m mixed, - not reached. */
  pages: string;
  counts: { original: number; written: number; peer: number; shifted: number; zero: number; foreign: number; garbage: number };
  /** Whose bytes a foreign view holds: 'canary', 'peer' (the op's second file), 'file' (the pinned file), 'other' (no file of this case). */
  foreignFrom: string[];
}

export interface PinResult extends SyscallResult {
  /** The kernel was seen holding the pin: the peer received the pinned I/O, the buffers were registered, the pipe took the pages. */
  held: boolean;
  /** What showed it held, e.g. 'peer received read of 16384 bytes at 65536'; null when not held. */
  evidence: string | null;
}

export interface ReleaseResult extends SyscallResult {
  ms: number | null;
  /** The pinned I/O's return value after release (bytes transferred), when it has one. */
  result: number | null;
}

export interface CanaryFacts {
  files: number;
  bytes: number;
  /**
   * Canary bytes whose blocks (FIEMAP) were blocks of the pinned range before the op: a
   * freed block was reused. null where FIEMAP gives no physical addresses (tmpfs). With
   * foreign bytes absent, 0 says the freed block was never handed out, not that it was safe.
   */
  reusedPinnedBytes: number | null;
}

export interface Views {
  /** The pinned range read through the mapping after release; n/a when the mapping was unmapped before the op. */
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

export type ViewName = keyof Views;

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
  pin: PinResult;
  op: OpResult;
  views: Views;
  /** Per view: page letters, record counts and the sources of foreign bytes. */
  viewDetail: Partial<Record<ViewName, ViewDetail>>;
  /**
   * The pinned file before the op (after the pin) and after everything settled; after is
   * null once unlinked. pathAfter: lstat of the file's path once everything settled
   * (ENOENT once unlinked, or lost with a tmpfs unmount); null when not looked at.
   */
  file: { before: FileFacts | null; after: FileFacts | null; pathAfter: SyscallResult | null };
  /** Where a SIGBUS was taken on access after the op, e.g. ['buffer']. Empty: none. */
  sigbus: string[];
  /** The pin's own completion after release (the I/O returned, the pipe drained ...). */
  release: ReleaseResult;
  /** Every kernel-facility /dev/kmsg line logged while the case ran (its marker to its end). */
  kernelLog: KernelLogLine[];
  /** Lines beyond the kept ones (lib/engine/kmsg.ts MAX_LINES_PER_SLICE); absent when none were dropped. */
  kernelLogDropped?: number;
  taintedBefore: number | null;
  taintedAfter: number | null;
  /** Canary files written after the op into space the op may have freed. */
  canary: CanaryFacts;
  /** Faults of daxpin itself seen in this case (a control recorded as waited, a pin never seen held ...): the record is in doubt. */
  harnessFaults?: string[];
  startedAt: string;
  durationMs: number;
  error?: string;
  /** For unsupported cases: why the case does not apply here. */
  reason?: string;
  /** Set-up steps that did not go as asked (e.g. no extent size hint on this fs). */
  notes?: string[];
  /** For crashed cases: the tail of the guest console. */
  console?: string;
  /** Which run of the case this is (0-based) when the run repeats each case (`--repeat N`); absent otherwise. */
  repeat?: number;
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
  /** How pins were held: 'evidence' (released once the op was seen asleep for dwellMs, at most holdMs) or 'fixed'. */
  holdMode?: 'evidence' | 'fixed';
  dwellMs?: number;
  provenance?: Provenance;
}

/** Where the run came from, so a regression mail can say exactly what was tested. */
export interface Provenance {
  /** /proc/version */
  procVersion: string | null;
  /** /proc/cmdline */
  cmdline: string | null;
  /** The Debian package the running kernel came from ("linux-image-6.1.0-50-amd64 6.1.158-1"), when dpkg knows it. */
  kernelPackage: string | null;
  /** sha256 of the kernel's build config (/boot/config-RELEASE or /proc/config.gz) and the lines that matter here. */
  kernelConfig: { source: string; sha256: string; lines: Record<string, string> } | null;
  /** daxpin's own commit (git, when run from a checkout) and version; node's version. */
  daxpin: { commit: string | null; version: string };
  node: string;
  /** Versions of the tools daxpin runs (mkfs, fsck), as they print them. */
  tools: Record<string, string | null>;
  /** The pmem devices the kernel has: how each came to be (a memmap= range or an NVDIMM namespace) and its mode. */
  pmem: Array<{ device: string; bytes: number; namespace: string | null; mode: string | null; memmap: string | null }>;
  /** Where the kernel log in this run starts: at boot (a guest booted for the run) or at the run's start. */
  kernelLogFrom: 'boot' | 'run-start';
  /** VM runs: the emulator, as the host started it. */
  qemu?: { version: string | null; machine: string; accel: string; cpus: number; memMb: number; pmemMb: number; cmdline: string };
}

/**
 * What only the guest sees of its boot: the kernel's version string and command line,
 * its pmem. daxpin, node, the tools, the kernel package and its config are the run
 * record's: the VM runner's host read them from the same root and the package itself.
 */
export type BootProvenance = Pick<Provenance, 'procVersion' | 'cmdline' | 'pmem' | 'kernelLogFrom'>;

/**
 * A guest boot's own provenance, read inside the guest as it starts (the VM runner's
 * host writes the run record; each boot of a resumed run says what it booted).
 */
export interface BootRecord {
  record: 'boot';
  schema: number;
  runId: string;
  kernel: string;
  provenance: BootProvenance;
}

/**
 * Kernel log lines that belong to no case: while a config was set up or torn down,
 * between two cases, before the first or after the last. Written only when there are any.
 */
export interface KernelLogRecord {
  record: 'kernel-log';
  schema: number;
  runId: string;
  kernel: string;
  /** run-start: before the first config; setup/teardown: a config's; between-cases: after `after`, before `before`. */
  phase: 'run-start' | 'setup' | 'between-cases' | 'teardown' | 'run-end';
  config: string | null;
  /** Plan keys of the cases around the gap, when there are. */
  after: string | null;
  before: string | null;
  lines: KernelLogLine[];
  dropped?: number;
  taintedBefore: number | null;
  taintedAfter: number | null;
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
  /** What daxpin passed to mount(2). */
  mountOptions: string;
  /** The filesystem's options as the kernel reports them (mountinfo super options). */
  superOptions?: string;
  /** The mkfs command line daxpin ran (null: it made no filesystem), and the geometry the fs's own tool reports. */
  mkfs?: string | null;
  geometry?: string | null;
  /** Why a DAX config is not DAX, in the kernel's words when it said something. */
  daxNote?: string | null;
  /** What the config's teardown could not undo (a busy mount detached lazily, a loop device that would not detach). */
  cleanupErrors?: string[];
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

export type RunLine = RunRecord | BootRecord | CaseRecord | ConfigRecord | KernelLogRecord | EndRecord;

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
    pin: { ok: false, errno: null, held: false, evidence: null },
    op: notStartedOp(),
    views: { buffer: 'n/a', pipe: 'n/a', file: 'n/a', peer: 'n/a', canary: 'n/a' },
    viewDetail: {},
    file: { before: null, after: null, pathAfter: null },
    sigbus: [],
    release: { ok: false, errno: null, ms: null, result: null },
    kernelLog: [],
    taintedBefore: null,
    taintedAfter: null,
    canary: { files: 0, bytes: 0, reusedPinnedBytes: null },
  };
}

export function notStartedOp(): OpResult {
  return {
    ok: false,
    errno: null,
    started: false,
    result: null,
    dedupe: null,
    returnedMs: null,
    wait: null,
    asleepAtRelease: false,
    blockedUntilRelease: false,
    afterReleaseMs: null,
    hung: null,
    signalledAtMs: null,
    taskState: null,
    stack: null,
  };
}

export function planKey(config: string, caseId: string): string {
  return `${config}/${caseId}`;
}
