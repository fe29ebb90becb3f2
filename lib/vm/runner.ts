// `daxpin vm`: boots each kernel under qemu with emulated pmem and runs daxpin's case
// matrix on real fsdax inside, bringing every result home.
//
// Per kernel, in `<out-dir>/`:
//   <release>.jsonl             the run: one RunRecord (runner 'vm'), the guest's case
//                               and config lines as they came, a `crashed` CaseRecord for
//                               each case a kernel panic or wedge cut short, an EndRecord
//   <release>/guest/            shared with the guest (same path inside): boot-N.jsonl
//                               (what the guest's `daxpin run --device` appends, one line
//                               per record, flushed), inflight (the case running now),
//                               skip (plan keys an earlier boot ran or crashed on)
//   <release>/boot-N.console.log  the serial console of each boot
//
// The host copies each guest line into the run file as it appears, so a panic loses
// nothing that was written. After a panic or wedge the in-flight case is recorded as
// crashed (console excerpt attached), added to the skip file, and a fresh boot (fresh
// mkfs) continues with the rest, up to --max-boots.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Case, CONFIGS, Config, MatrixName, findConfig } from '../cases/matrix';
import { register } from '../host/lifecycle';
import { kernelLogSignature } from '../engine/kmsg';
import { newRunId, plan } from '../engine/run';
import { CaseRecord, ConfigRecord, EndRecord, KernelLogLine, KernelLogRecord, RunRecord, SCHEMA_VERSION, planKey, unmeasuredCase } from '../outcome';
import { configViolations, invariantViolations, kernelLogRecordViolations, outcomeClass } from '../verdict';
import { reason, VmError } from './errors';
import { buildInitramfs } from './initramfs';
import { Kernel, resolveKernel } from './kernels';
import { ensureHostPackages } from './provision';
import { Accel, BootOptions, BootResult, GUEST_PRIVATE_DIRS, bootGuest, hiddenInGuest, keepInGuest, probeAccel } from './qemu';

export { hiddenInGuest, keepInGuest } from './qemu';

/** What `daxpin run` with no --dir/--scratch/--device boots: the newest kernel the archive has. */
export const DEFAULT_KERNELS = ['latest'];
export const DEFAULT_MAX_BOOTS = 8;
export const DEFAULT_PMEM_MB = 1024;
export const DEFAULT_MEM_MB = 2048;
export const DEFAULT_HOLD_MS = 200;
export const DEFAULT_SETTLE_MS = 2000;
/** mkfs.xfs (xfsprogs >= 5.19) refuses filesystems below 300 MB (lib/configs/setup.ts XFS_MIN_MB). */
const XFS_MIN_PMEM_MB = 300;
/** The emulated pmem device every config is formatted on, in turn. */
export const GUEST_DEVICE = '/dev/pmem0';
/** The guest's host name (set by the initramfs init): what its own records carry. */
export const GUEST_HOSTNAME = 'daxpin-guest';
/** Console lines attached to a crashed case. */
export const CONSOLE_EXCERPT_LINES = 60;
/** The guest orchestrator gives a case this long besides hold and settle (lib/cli.ts caseBudgetMs + signalWaitMs). */
const GUEST_CASE_BUDGET_MS = 61_000;

export interface VmOptions {
  /** Kernel specs (see lib/vm/kernels.ts); empty or missing: DEFAULT_KERNELS. */
  kernels?: string[];
  /** Config names; default every config of lib/cases/matrix CONFIGS. */
  config?: string[];
  /** Case globs (case id or config/caseId). */
  cases?: string[];
  matrix?: MatrixName;
  holdMs?: number;
  settleMs?: number;
  /** Canary KiB the guest writes after each op (`run --canary-kb`); default: the guest's default. */
  canaryKb?: number;
  /** Default `./daxpin-vm-<runId>`. */
  outDir?: string;
  /** Size of /dev/pmem0 in MiB. */
  pmemMb?: number;
  /** Guest RAM besides the pmem, MiB. */
  memMb?: number;
  accel?: Accel;
  /** commander's `--no-install` sets this false: refuse to install missing host packages. */
  install?: boolean;
  noInstall?: boolean;
  maxBoots?: number;
  /** The run's id; each kernel's run gets `<runId>-<release>`. */
  runId?: string;
  /** Recorded in each RunRecord; default process.argv after the script. */
  argv?: string[];
  /** More guest environment. DAXPIN_TEST_PANIC_AT is passed through from process.env too. */
  env?: Record<string, string>;
  /** Kill a guest with no console output and no result written for this long. */
  idleTimeoutMs?: number;
  /** Kill a guest that wrote no new result (case or config line) for this long, console or not. */
  stallTimeoutMs?: number;
  /** Progress and messages; default: stderr. */
  log?: (line: string) => void;
  /** Every console line of every boot (they are also kept in boot-N.console.log). */
  onConsoleLine?: (release: string, line: string) => void;
  /** The guest boot; tests replace it. */
  boot?: (o: BootOptions) => Promise<BootResult>;
}

export interface KernelOutcome {
  spec: string;
  release: string;
  /** The per-kernel JSONL. */
  file: string;
  accel: 'tcg' | 'kvm' | null;
  boots: BootSummary[];
  planned: string[];
  /** Keys with a case line, crashed ones included. */
  recorded: string[];
  crashed: string[];
  notRun: string[];
  /** Cases and configs with an invariant violation. */
  violations: string[];
  /** Why this kernel could not run (all) of its cases; null when it ran to the end. */
  error: string | null;
  /** ms from the first qemu start to the first case line. */
  firstResultMs: number | null;
  wallMs: number;
}

export interface BootSummary {
  boot: number;
  /** How it ended: 'exit 0', 'panic', 'wedged', 'stalled', 'exit 2', ... */
  ended: string;
  /** Case lines this boot wrote. */
  cases: number;
  commandStartMs: number | null;
  durationMs: number;
  inflight: string | null;
  console: string;
  /** An Oops or BUG was printed (the guest may have gone on). */
  oopsed: boolean;
  /** Distinct splat lines the console showed during the boot (WARNING, BUG, Oops, panic, lockups), up to 20. */
  kernelWarnings: string[];
}

export interface VmResult {
  exitCode: number;
  outDir: string | null;
  kernels: KernelOutcome[];
}

/** A bad command line or environment: one line, exit 2. */
export class VmUsageError extends Error {
  readonly exitCode = 2;

  constructor(message: string) {
    super(message.startsWith('daxpin: ') ? message : `daxpin: ${message}`);
    this.name = 'VmUsageError';
  }
}

export type KernelSpecKind = 'latest' | 'version' | 'release' | 'deb' | 'dir';

/**
 * Checks the form of kernel specs without fetching anything: `latest`, a version
 * prefix (`6.1`, `6.12.9`), an exact Debian release (`6.1.0-50-amd64`), existing .deb
 * file(s) (comma-separated for split packages) or an existing directory. Duplicates
 * are dropped. Throws VmUsageError naming the first bad one.
 */
export function parseKernelSpecs(specs: string[]): { spec: string; kind: KernelSpecKind }[] {
  const out: { spec: string; kind: KernelSpecKind }[] = [];
  for (const raw of specs) {
    const spec = raw.trim();
    let kind: KernelSpecKind;
    if (spec === 'latest') kind = 'latest';
    else if (/^\d+(\.\d+)*$/.test(spec)) kind = 'version';
    else if (/^\d+\.\d+\S*-amd64$/.test(spec) && !spec.includes('/')) kind = 'release';
    else if (spec.endsWith('.deb') || spec.includes('.deb,')) {
      for (const deb of spec.split(',')) {
        if (!fs.existsSync(deb)) throw new VmUsageError(`--kernel ${spec}: no such file ${deb}`);
      }
      kind = 'deb';
    } else if (spec !== '' && isDirectory(spec)) kind = 'dir';
    else if (spec.includes('/')) throw new VmUsageError(`--kernel ${spec}: no such directory`);
    else {
      throw new VmUsageError(
        `"${spec}" is not a kernel spec: give a version (6.1, 6.12, 7.3), latest, a release (6.1.0-50-amd64), .deb file(s) or a kernel directory`,
      );
    }
    if (!out.some((o) => o.spec === spec)) out.push({ spec, kind });
  }
  return out;
}

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

export interface PlannedCase {
  key: string;
  case: Case;
}

/** The cases the guest will plan for these options, in its order (the same `plan` the guest calls). */
export function planCases(configs: Config[], matrix: MatrixName, globs?: string[]): PlannedCase[] {
  const sources = configs.map((config) => ({ config, prepare: () => Promise.reject(new Error('plan only')) }));
  return plan(sources, matrix, globs).flatMap((p) => p.cases.map((c) => ({ key: planKey(c.config.name, c.id), case: c })));
}

function resolveConfigs(names: string[] | undefined): Config[] {
  if (!names || names.length === 0) return CONFIGS;
  const out: Config[] = [];
  for (const name of names) {
    const c = findConfig(name);
    if (!c) throw new VmUsageError(`unknown config "${name}"; known: ${CONFIGS.map((x) => x.name).join(', ')}`);
    if (!out.includes(c)) out.push(c);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Console: what a crashed case carries

const ANSI = /\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-Za-z]|\x1bc|[\x00-\x08\x0b-\x1f\x7f]/g;

/** A console line fit for a text file: terminal escapes and control characters removed. */
export function cleanConsoleLine(line: string): string {
  return line.replace(ANSI, '');
}

const KERNEL_TIMESTAMP = /^\[\s*\d+\.\d+\]\s?/;
// Case matters: the kernel's splats are upper case ("WARNING: CPU: …"), while e.g.
// "XFS (pmem0): DAX enabled. Warning: EXPERIMENTAL" is an ordinary notice.
const CONSOLE_SEVERE =
  /Kernel panic|WARNING:|BUG:|\bOops\b|general protection|lockdep|possible (circular|recursive) locking|blocked for more than|KASAN|UBSAN|rcu.*stall|soft lockup|hard LOCKUP|refcount_t|list_add corruption|Bad page|sysrq: Trigger a crash|Call Trace/;

/**
 * Kernel log lines in a console excerpt that look like a splat: panic, Oops, BUG,
 * WARNING, lockup, hung task, sysrq crash. Only lines with a kernel timestamp (the
 * guest's own output has none). The console does not carry syslog levels: panics are
 * given 0, BUG/Oops/GPF 1, the rest 4.
 */
export function consoleKernelLog(lines: string[]): KernelLogLine[] {
  const out: KernelLogLine[] = [];
  for (const raw of lines) {
    const line = cleanConsoleLine(raw);
    if (!KERNEL_TIMESTAMP.test(line)) continue;
    const text = line.replace(KERNEL_TIMESTAMP, '').trimEnd();
    if (!CONSOLE_SEVERE.test(text)) continue;
    const level = /Kernel panic/.test(text) ? 0 : /BUG:|\bOops\b|general protection|kernel BUG/i.test(text) ? 1 : 4;
    out.push({ level, signature: kernelLogSignature(text), text });
  }
  return out;
}

export interface CrashInfo {
  runId: string;
  kernel: string;
  holdMs: number;
  settleMs: number;
  status: 'crashed' | 'error';
  /** One line: what happened. */
  error: string;
  /** Console lines since the case started (for kernelLog). */
  caseConsole: string[];
  /** The last console lines of the boot. */
  consoleTail: string[];
  startedAt: Date;
  durationMs: number;
}

/** The record of a case the guest never finished: the orchestrator's defaults, status crashed, console attached. */
export function crashedRecord(c: Case, info: CrashInfo): CaseRecord {
  return {
    ...unmeasuredCase({
      runId: info.runId,
      caseId: c.id,
      kernel: info.kernel,
      host: GUEST_HOSTNAME,
      config: c.config.name,
      fsType: c.config.fsType,
      mapping: c.mapping.name,
      pinMethod: c.pinMethod.name,
      layoutOp: c.layoutOp.name,
      holdMs: info.holdMs,
      settleMs: info.settleMs,
      status: info.status,
      startedAt: info.startedAt.toISOString(),
      durationMs: Math.max(0, Math.round(info.durationMs)),
    }),
    kernelLog: consoleKernelLog(info.caseConsole),
    error: info.error,
    console: info.consoleTail.slice(-CONSOLE_EXCERPT_LINES).map(cleanConsoleLine).join('\n'),
  };
}

// ---------------------------------------------------------------------------
// Files

/** Reads the complete lines appended to a file since the last poll. */
export class LineTailer {
  private offset = 0;
  private partial = '';

  constructor(readonly file: string) {}

  /** New complete lines (without the newline). */
  poll(): string[] {
    let fd: number;
    try {
      fd = fs.openSync(this.file, 'r');
    } catch {
      return [];
    }
    const chunks: string[] = [];
    try {
      const buf = Buffer.alloc(1 << 20);
      for (;;) {
        const n = fs.readSync(fd, buf, 0, buf.length, this.offset);
        if (n <= 0) break;
        this.offset += n;
        chunks.push(buf.toString('utf8', 0, n));
      }
    } finally {
      fs.closeSync(fd);
    }
    const lines = (this.partial + chunks.join('')).split('\n');
    this.partial = lines.pop() ?? '';
    return lines.filter((l) => l.trim() !== '');
  }

  /** A last line without its newline (a write the guest did not finish). */
  get torn(): string {
    return this.partial;
  }
}

/** Append-only JSONL, each line flushed to disk before the next. */
class RunFile {
  private fd: number;

  constructor(readonly file: string) {
    this.fd = fs.openSync(file, 'wx');
  }

  writeRaw(line: string): void {
    if (this.fd < 0) return;
    fs.writeSync(this.fd, `${line}\n`);
    fs.fsyncSync(this.fd);
  }

  write(rec: RunRecord | CaseRecord | ConfigRecord | EndRecord): void {
    this.writeRaw(JSON.stringify(rec));
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}

function writeSynced(file: string, text: string): void {
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function readText(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

export function formatElapsed(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

// ---------------------------------------------------------------------------
// One kernel

export interface KernelRunOptions {
  spec: string;
  kernel: Kernel;
  initramfs: string;
  accel: 'tcg' | 'kvm';
  configs: Config[];
  matrix: MatrixName;
  cases?: string[];
  holdMs: number;
  settleMs: number;
  canaryKb?: number;
  pmemMb: number;
  memMb: number;
  outDir: string;
  runId: string;
  argv: string[];
  maxBoots: number;
  env: Record<string, string>;
  idleTimeoutMs: number;
  stallTimeoutMs: number;
  log: (line: string) => void;
  onConsoleLine?: (line: string) => void;
  boot: (o: BootOptions) => Promise<BootResult>;
  /** Host directories under /tmp or /run the guest must be given (see keepInGuest). */
  keepPaths?: string[];
  /** `node` and `dist/lib/cli.js` as the guest (the host's root) sees them. */
  node: string;
  cli: string;
  /** Files the guest's init reads ahead for the command (guestPrefetch). */
  prefetch?: string[];
  /** The guest command's working directory (must exist in the guest). */
  cwd: string;
}

/**
 * What the guest command reads first, in that order, for the init's page cache warm-up
 * (lib/vm/initramfs.ts): node, daxpin's package.json, compiled modules and addon, and
 * commander. Read cold over 9p under TCG they cost the command 1.5 s or more; read
 * while the guest loads its kernel modules they cost it nothing.
 */
export function guestPrefetch(node: string, repoRoot: string): string[] {
  const files = (dir: string, ext: RegExp): string[] => {
    try {
      return fs
        .readdirSync(dir, { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile() && ext.test(e.name))
        .map((e) => path.join(e.parentPath, e.name))
        .sort();
    } catch {
      return [];
    }
  };
  return [
    fs.realpathSync(node),
    path.join(repoRoot, 'package.json'),
    ...files(path.join(repoRoot, 'node_modules', 'commander'), /\.(js|json)$/),
    ...files(path.join(repoRoot, 'dist', 'lib'), /\.js$/),
    ...files(path.join(repoRoot, 'build', 'Release'), /\.node$/),
  ];
}

/** The last line of the guest's own output (no kernel timestamp, no init marker), for messages. */
function lastGuestLine(consoleTail: string[]): string | null {
  for (let i = consoleTail.length - 1; i >= 0; i--) {
    const line = cleanConsoleLine(consoleTail[i]).trim();
    if (line === '' || KERNEL_TIMESTAMP.test(line) || line.startsWith('daxpin-guest:') || line.startsWith('qemu:')) continue;
    if (/^(Node\.js v|\s*at |\^|\}|requireStack|code:)/.test(line)) continue;
    return line.replace(/^daxpin:\s*/, '');
  }
  return null;
}

/** How the guest names a config being set up in the inflight file: `<config>/`. */
function inflightConfig(text: string): string | null {
  const m = /^([^/\s]+)\/$/.exec(text);
  return m ? m[1] : null;
}

/** Runs the plan on one kernel, booting as often as crashes need (up to maxBoots). */
export async function runKernel(o: KernelRunOptions): Promise<KernelOutcome> {
  const t0 = Date.now();
  const release = o.kernel.release;
  const planned = planCases(o.configs, o.matrix, o.cases);
  const byKey = new Map(planned.map((p) => [p.key, p.case]));
  const plannedKeys = planned.map((p) => p.key);
  const total = plannedKeys.length;

  const kernelDir = path.join(o.outDir, release);
  fs.mkdirSync(path.join(kernelDir, 'guest'), { recursive: true });
  // The guest sees the share at the host's real path of it.
  const share = fs.realpathSync(path.join(kernelDir, 'guest'));
  const skipFile = path.join(share, 'skip');
  const inflightFile = path.join(share, 'inflight');
  const file = path.join(o.outDir, `${release}.jsonl`);
  const out = new RunFile(file);

  const outcome: KernelOutcome = {
    spec: o.spec,
    release,
    file,
    accel: o.accel,
    boots: [],
    planned: plannedKeys,
    recorded: [],
    crashed: [],
    notRun: [],
    violations: [],
    error: null,
    firstResultMs: null,
    wallMs: 0,
  };
  const recorded = new Set<string>();
  const configsSeen = new Set<string>();
  /** Keys the guest must not run again: recorded, crashed, or of a config whose set-up crashed the kernel. */
  const skip = new Set<string>();
  const say = (line: string) => o.log(`daxpin vm: ${release}: ${line}`);

  const runRecord: RunRecord = {
    record: 'run',
    schema: SCHEMA_VERSION,
    runId: o.runId,
    kernel: release,
    host: os.hostname(),
    startedAt: new Date(t0).toISOString(),
    argv: o.argv,
    holdMs: o.holdMs,
    settleMs: o.settleMs,
    planned: plannedKeys,
    runner: 'vm',
    accel: o.accel,
  };
  out.write(runRecord);

  let tailer: LineTailer | null = null;
  /** Boots in a row whose kernel died before the guest command started. */
  let deadBeforeCommand = 0;
  let bootStart = 0;
  const noteViolations = (what: string, n: number) => {
    if (n > 0) outcome.violations.push(what);
  };
  const takeLines = (): number => {
    if (!tailer) return 0;
    let cases = 0;
    for (const line of tailer.poll()) {
      let rec: { record?: unknown; config?: unknown; caseId?: unknown; kernel?: unknown };
      try {
        rec = JSON.parse(line) as typeof rec;
      } catch {
        say(`guest wrote a line that is not JSON; left out: ${line.slice(0, 120)}`);
        continue;
      }
      if (rec.record === 'case') {
        const c = rec as unknown as CaseRecord;
        const key = planKey(c.config, c.caseId);
        out.writeRaw(line);
        cases++;
        if (outcome.firstResultMs === null) outcome.firstResultMs = Date.now() - t0;
        if (c.kernel !== release && recorded.size === 0) say(`the guest reports kernel ${c.kernel}, not ${release}`);
        if (!byKey.has(key)) say(`guest recorded ${key}, which is not in the plan`);
        recorded.add(key);
        skip.add(key);
        const v = invariantViolations(c);
        noteViolations(key, v.length);
        o.log(
          `daxpin vm: ${release} [${recorded.size}/${total}] ${c.config} ${c.caseId}: ${outcomeClass(c)}` +
            `${v.length ? ` !! ${v.map((x) => x.kind).join(', ')}` : ''} (${formatElapsed(Date.now() - t0)})`,
        );
      } else if (rec.record === 'config') {
        const c = rec as unknown as ConfigRecord;
        out.writeRaw(line);
        configsSeen.add(c.config);
        noteViolations(`config ${c.config}`, configViolations(c).length);
        const fsck = c.fsck ? `, ${c.fsck.tool} ${c.fsck.ok ? 'clean' : `exit ${c.fsck.exitCode}`}` : '';
        say(`config ${c.config}: ${c.error ? `not set up: ${c.error}` : `DAX ${c.daxVerified ? 'verified by statx' : 'off'}${fsck}`}`);
      } else if (rec.record === 'kernel-log') {
        // The guest's kernel log outside its cases (set-up, between cases): from boot on.
        out.writeRaw(line);
        const k = rec as unknown as KernelLogRecord;
        noteViolations(`kernel log (${k.phase}${k.config ? ` ${k.config}` : ''})`, kernelLogRecordViolations(k).length);
      }
      // The guest's end record (per boot) is not copied: the host writes the run's one end record.
    }
    return cases;
  };

  let finished = false;
  const finish = (interrupted: boolean) => {
    if (finished) return;
    finished = true;
    takeLines();
    outcome.recorded = [...recorded];
    outcome.notRun = plannedKeys.filter((k) => !recorded.has(k));
    outcome.wallMs = Date.now() - t0;
    out.write({
      record: 'end',
      schema: SCHEMA_VERSION,
      runId: o.runId,
      finishedAt: new Date().toISOString(),
      notRun: outcome.notRun,
      interrupted,
      ...(outcome.error ? { error: outcome.error } : {}),
    });
    out.close();
  };
  // On Ctrl-C (qemu.ts kills the guest), what the guest wrote so far is copied and the run file ends.
  const unregister = register(`daxpin vm run file ${release}`, () => finish(true));

  try {
    for (let boot = 1; boot <= o.maxBoots; boot++) {
      const remaining = plannedKeys.filter((k) => !skip.has(k));
      if (remaining.length === 0) break;
      writeSynced(skipFile, [...skip].map((k) => `${k}\n`).join(''));
      fs.rmSync(inflightFile, { force: true });
      const bootOut = path.join(share, `boot-${boot}.jsonl`);
      fs.rmSync(bootOut, { force: true });
      tailer = new LineTailer(bootOut);
      const consoleFile = path.join(kernelDir, `boot-${boot}.console.log`);
      const consoleFd = fs.openSync(consoleFile, 'w');
      /** Console lines with the host time they arrived: the crashed case gets those since it began. */
      const timed: { at: number; line: string }[] = [];
      const splats = new Map<string, string>();
      say(`boot ${boot} (${o.accel}), ${remaining.length} of ${total} cases to run`);

      const abort = new AbortController();
      let lastProgress = Date.now();
      let lastInflight = '';
      let casesThisBoot = 0;
      let configsSeenThisBoot = false;
      let stalled = false;
      bootStart = Date.now();
      const poller = setInterval(() => {
        const before = configsSeen.size;
        const n = takeLines();
        casesThisBoot += n;
        if (configsSeen.size !== before) configsSeenThisBoot = true;
        const inflight = readText(inflightFile) ?? '';
        if (n > 0 || inflight !== lastInflight) lastProgress = Date.now();
        lastInflight = inflight;
        if (Date.now() - lastProgress > o.stallTimeoutMs && !abort.signal.aborted) {
          stalled = true;
          abort.abort();
        }
      }, 500);

      const guestCommand = [
        o.node,
        o.cli,
        'run',
        '--device',
        GUEST_DEVICE,
        '--out',
        bootOut,
        '--run-id',
        o.runId,
        '--skip-file',
        skipFile,
        '--inflight',
        inflightFile,
        '--no-run-record',
        // A guest is booted for the run: its whole kernel log, from boot, is the run's.
        '--kernel-log-from',
        'boot',
        '--matrix',
        o.matrix,
        '--hold-ms',
        String(o.holdMs),
        '--settle-ms',
        String(o.settleMs),
        ...(o.canaryKb !== undefined ? ['--canary-kb', String(o.canaryKb)] : []),
        ...o.configs.flatMap((c) => ['--config', c.name]),
        ...(o.cases ?? []).flatMap((g) => ['--cases', g]),
      ];
      let result: BootResult;
      try {
        result = await o.boot({
          kernel: o.kernel,
          initramfs: o.initramfs,
          memMb: o.memMb,
          pmemMb: o.pmemMb,
          accel: o.accel,
          guestCommand,
          env: o.env,
          cwd: o.cwd,
          keepPaths: o.keepPaths,
          prefetch: o.prefetch,
          resultsDir: share,
          idleTimeoutMs: o.idleTimeoutMs,
          signal: abort.signal,
          onConsoleLine: (line) => {
            const clean = cleanConsoleLine(line);
            timed.push({ at: Date.now(), line: clean });
            if (timed.length > 2000) timed.splice(0, timed.length - 1000);
            fs.writeSync(consoleFd, `${clean}\n`);
            for (const l of consoleKernelLog([clean])) {
              if (splats.size < 20 && !/^Call Trace/.test(l.text) && !splats.has(l.signature)) splats.set(l.signature, l.text);
            }
            o.onConsoleLine?.(line);
          },
        });
      } finally {
        clearInterval(poller);
        fs.closeSync(consoleFd);
      }
      const configsBefore = configsSeen.size;
      casesThisBoot += takeLines();
      if (configsSeen.size !== configsBefore) configsSeenThisBoot = true;
      if (tailer.torn) say(`boot ${boot}: the guest's last line was cut off (${tailer.torn.length} bytes); left out`);

      const inflight = (readText(inflightFile) ?? '').trim() || null;
      const inflightAt = fs.existsSync(inflightFile) ? fs.statSync(inflightFile).mtimeMs : bootStart;
      const commandFinished = result.exitCode !== null;
      const ended = commandFinished
        ? `exit ${result.exitCode}`
        : result.panicked
          ? 'panic'
          : result.wedged
            ? 'wedged'
            : stalled
              ? 'stalled'
              : result.timedOut
                ? 'timed out'
                : result.setupError
                  ? 'init failed'
                  : 'guest died';
      const summary: BootSummary = {
        boot,
        ended,
        cases: casesThisBoot,
        commandStartMs: result.commandStartMs,
        durationMs: result.durationMs,
        inflight,
        console: consoleFile,
        oopsed: result.oopsed,
        kernelWarnings: [...splats.values()],
      };
      outcome.boots.push(summary);
      if (result.commandStartMs !== null) deadBeforeCommand = 0;
      const up = result.commandStartMs !== null ? `guest up after ${(result.commandStartMs / 1000).toFixed(1)} s, ` : '';
      say(`boot ${boot} ended (${ended}) after ${formatElapsed(result.durationMs)}: ${up}${casesThisBoot} cases`);
      if (summary.kernelWarnings.length > 0) {
        say(`boot ${boot}: the console showed ${summary.kernelWarnings.map((w) => `"${w}"`).join(', ')} (${consoleFile})`);
      }
      const lastGuestMessage = lastGuestLine(result.consoleTail);

      if (result.setupError !== null) {
        outcome.error = `the guest's init could not ${result.setupError} (console: ${consoleFile})`;
        break;
      }
      if (commandFinished && (result.exitCode === 0 || result.exitCode === 1) && casesThisBoot === 0 && !configsSeenThisBoot) {
        // The guest "ran" without a single record: node could not load daxpin, or the like.
        outcome.error = `the guest command exited with status ${result.exitCode} without running a case${lastGuestMessage ? `: ${lastGuestMessage}` : ''} (console: ${consoleFile})`;
        break;
      }
      if (commandFinished && (result.exitCode === 0 || result.exitCode === 1)) {
        if (result.panicked) say(`the kernel panicked after the guest command finished (console: ${consoleFile})`);
        break; // the guest ran its plan; what it did not record is notRun
      }
      if (commandFinished && result.exitCode === 130) {
        outcome.error = 'the guest run was interrupted';
        break;
      }

      // The guest did not finish its plan: a kernel panic, a wedge, or daxpin itself died.
      const inflightCase = inflight !== null && byKey.has(inflight) && !recorded.has(inflight) ? inflight : null;
      const setupConfig = inflight !== null ? inflightConfig(inflight) : null;
      const what = commandFinished
        ? `the guest's daxpin exited with status ${result.exitCode}${lastGuestMessage ? `: ${lastGuestMessage}` : ''}`
        : result.panicked
          ? `kernel panic (boot ${boot})`
          : result.wedged
            ? `guest wedged: no console output and no result for ${Math.round(o.idleTimeoutMs / 1000)} s (boot ${boot})`
            : stalled
              ? `guest stalled: no new result for ${Math.round(o.stallTimeoutMs / 1000)} s (boot ${boot})`
              : result.timedOut
                ? `guest timed out (boot ${boot})`
                : `guest ended without finishing (qemu exited; boot ${boot})`;
      if (inflightCase !== null) {
        const c = byKey.get(inflightCase) as Case;
        const rec = crashedRecord(c, {
          runId: o.runId,
          kernel: release,
          holdMs: o.holdMs,
          settleMs: o.settleMs,
          status: commandFinished ? 'error' : 'crashed',
          error: `${what} during this case`,
          caseConsole: timed.filter((t) => t.at >= inflightAt - 1000).map((t) => t.line),
          consoleTail: result.consoleTail,
          startedAt: new Date(inflightAt),
          durationMs: bootStart + result.durationMs - inflightAt,
        });
        out.write(rec);
        recorded.add(inflightCase);
        skip.add(inflightCase);
        if (rec.status === 'crashed') outcome.crashed.push(inflightCase);
        noteViolations(inflightCase, invariantViolations(rec).length);
        o.log(`daxpin vm: ${release} [${recorded.size}/${total}] ${c.config.name} ${c.id}: ${rec.status} !! ${what} (${formatElapsed(Date.now() - t0)})`);
      } else if (setupConfig !== null && !configsSeen.has(setupConfig) && findConfig(setupConfig)) {
        const config = findConfig(setupConfig) as Config;
        const rec: ConfigRecord = {
          record: 'config',
          schema: SCHEMA_VERSION,
          runId: o.runId,
          kernel: release,
          config: config.name,
          fsType: config.fsType,
          daxVerified: false,
          device: GUEST_DEVICE,
          mountOptions: '',
          fsck: null,
          error: `${what} while the guest set the config up; last console line: ${cleanConsoleLine(result.consoleTail[result.consoleTail.length - 1] ?? '')}`,
        };
        out.write(rec);
        configsSeen.add(config.name);
        for (const p of planned) if (p.case.config.name === config.name) skip.add(p.key);
        say(`config ${config.name}: ${what} while setting it up; its cases are not run`);
      } else if (!commandFinished && result.commandStartMs === null && deadBeforeCommand === 0 && boot < o.maxBoots) {
        // The kernel died in its own boot, before anything of daxpin ran. Seen with 7.3
        // under TCG booted via PVH: 2 of 30 boots (0 of 60 from the bzImage), an int3 Oops
        // in set_next_task_fair at 1.27 s while the kernel patches its text. One fresh boot
        // more, its console kept; a kernel that cannot boot twice in a row is given up on below.
        deadBeforeCommand++;
        say(`${what} before the guest command started; trying one fresh boot (console: ${consoleFile})`);
      } else if (casesThisBoot === 0) {
        const again = deadBeforeCommand > 0 ? ` (boot ${boot - 1} died the same way)` : '';
        outcome.error = commandFinished
          ? `${what}, before its first case (console: ${consoleFile})`
          : `${what} before the first case: ${result.commandStartMs === null ? `the guest command never started${again}` : 'during set-up'} (console: ${consoleFile})`;
        break;
      } else {
        say(`${what} outside a case (after ${inflight ?? 'no case'}); continuing in a fresh boot`);
      }
      if (boot === o.maxBoots && plannedKeys.some((k) => !skip.has(k))) {
        outcome.error = `gave up after ${o.maxBoots} boots (--max-boots)`;
      } else if (plannedKeys.some((k) => !skip.has(k))) {
        say(`resuming in a fresh boot`);
      }
    }
  } finally {
    finish(false);
    unregister();
  }
  if (outcome.error) say(outcome.error);
  return outcome;
}

// ---------------------------------------------------------------------------
// The command

function defaultLog(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** The idle timeout a boot needs: the longest a case may legitimately be silent, plus margin. */
export function idleTimeoutFor(holdMs: number, settleMs: number): number {
  return Math.max(180_000, GUEST_CASE_BUDGET_MS + holdMs + settleMs + 60_000);
}

/** `daxpin vm` (and `daxpin run` without --dir/--scratch/--device). Never throws for bad input: prints one line, exit 2. */
export async function vmCommand(opts: VmOptions): Promise<VmResult> {
  const log = opts.log ?? defaultLog;
  try {
    return await vmCommandInner(opts, log);
  } catch (err) {
    if (err instanceof VmUsageError || err instanceof VmError) {
      log(err.message);
      return { exitCode: 2, outDir: null, kernels: [] };
    }
    throw err;
  }
}

async function vmCommandInner(opts: VmOptions, log: (line: string) => void): Promise<VmResult> {
  const specs = parseKernelSpecs(opts.kernels && opts.kernels.length > 0 ? opts.kernels : DEFAULT_KERNELS);
  const configs = resolveConfigs(opts.config);
  const matrix: MatrixName = opts.matrix ?? 'default';
  const holdMs = opts.holdMs ?? DEFAULT_HOLD_MS;
  const settleMs = opts.settleMs ?? DEFAULT_SETTLE_MS;
  const maxBoots = opts.maxBoots ?? DEFAULT_MAX_BOOTS;
  if (!Number.isInteger(maxBoots) || maxBoots < 1) throw new VmUsageError(`--max-boots must be 1 or more, got ${maxBoots}`);
  const pmemMb = opts.pmemMb ?? DEFAULT_PMEM_MB;
  if (pmemMb < 256) throw new VmUsageError(`--pmem-mb must be at least 256, got ${pmemMb}`);
  if (pmemMb < XFS_MIN_PMEM_MB && configs.some((c) => c.fsType === 'xfs')) {
    throw new VmUsageError(`--pmem-mb ${pmemMb} is too small for XFS (mkfs.xfs refuses filesystems below 300 MB): give at least ${XFS_MIN_PMEM_MB}, or only ext4/tmpfs configs`);
  }
  const planned = planCases(configs, matrix, opts.cases);
  if (planned.length === 0) {
    throw new VmUsageError(`no case matches ${opts.cases?.map((c) => `"${c}"`).join(', ') ?? 'the plan'}; see daxpin list`);
  }
  const cli = path.resolve(__dirname, '..', 'cli.js');
  if (!fs.existsSync(cli)) throw new VmUsageError(`${cli} is missing: build daxpin first (npx tsc -p .)`);
  // The guest runs this very daxpin and node from the host's root, shared read-only.
  const repoRoot = path.resolve(__dirname, '..', '..', '..');
  // daxpin's root and node's prefix: checked out under /tmp they are bound into the guest.
  const keepPaths: string[] = [];
  for (const dir of [fs.realpathSync(repoRoot), path.dirname(path.dirname(fs.realpathSync(process.execPath)))]) {
    const keep = keepInGuest(dir);
    if (keep) keepPaths.push(keep);
    else if (hiddenInGuest(dir)) throw new VmUsageError(`${hiddenInGuest(dir)}: install daxpin (and node) outside ${GUEST_PRIVATE_DIRS.join(', ')}`);
  }
  if (process.getuid?.() !== 0) throw new VmUsageError('daxpin vm needs root (qemu shares / with the guest, and the guest runs as root)');

  const noInstall = opts.install === false || opts.noInstall === true;
  await ensureHostPackages({ noInstall, log });

  // Every kernel is resolved (and fetched) before the first boot: a bad spec fails now, not an hour in.
  const kernels: { spec: string; kernel: Kernel }[] = [];
  for (const { spec } of specs) {
    const kernel = await resolveKernel(spec, { log });
    const same = kernels.find((k) => k.kernel.release === kernel.release);
    if (same) {
      log(`daxpin vm: --kernel ${spec} is ${kernel.release} again (as --kernel ${same.spec}); booted once`);
      continue;
    }
    kernels.push({ spec, kernel });
  }

  const runId = opts.runId ?? newRunId();
  const outDir = path.resolve(opts.outDir ?? `daxpin-vm-${runId}`);
  fs.mkdirSync(outDir, { recursive: true });
  for (const { kernel } of kernels) {
    const file = path.join(outDir, `${kernel.release}.jsonl`);
    if (fs.existsSync(file)) throw new VmUsageError(`${file} exists already; give another --out-dir`);
  }
  const env: Record<string, string> = { ...opts.env };
  if (process.env.DAXPIN_TEST_PANIC_AT && env.DAXPIN_TEST_PANIC_AT === undefined) env.DAXPIN_TEST_PANIC_AT = process.env.DAXPIN_TEST_PANIC_AT;
  const idleTimeoutMs = opts.idleTimeoutMs ?? idleTimeoutFor(holdMs, settleMs);
  const stallTimeoutMs = opts.stallTimeoutMs ?? idleTimeoutMs + 120_000;
  log(
    `daxpin vm: ${kernels.map((k) => k.kernel.release).join(', ')}: ${planned.length} cases each (${matrix} matrix; ${configs.map((c) => c.name).join(', ')}); results in ${outDir}`,
  );

  const outcomes: KernelOutcome[] = [];
  for (const { spec, kernel } of kernels) {
    const t0 = Date.now();
    let initramfs: string;
    let accel: 'tcg' | 'kvm';
    try {
      initramfs = await buildInitramfs(kernel);
      accel = opts.accel === 'kvm' ? 'kvm' : opts.accel === 'tcg' ? 'tcg' : await probeAccel(kernel, initramfs);
    } catch (err) {
      const message = reason(err);
      log(`daxpin vm: ${kernel.release}: ${message}`);
      outcomes.push({
        spec,
        release: kernel.release,
        file: '',
        accel: null,
        boots: [],
        planned: planned.map((p) => p.key),
        recorded: [],
        crashed: [],
        notRun: planned.map((p) => p.key),
        violations: [],
        error: message,
        firstResultMs: null,
        wallMs: Date.now() - t0,
      });
      continue;
    }
    const outcome = await runKernel({
      spec,
      kernel,
      initramfs,
      accel,
      configs,
      matrix,
      cases: opts.cases,
      holdMs,
      settleMs,
      canaryKb: opts.canaryKb,
      pmemMb,
      memMb: opts.memMb ?? DEFAULT_MEM_MB,
      outDir,
      runId: `${runId}-${kernel.release}`,
      argv: opts.argv ?? process.argv.slice(2),
      maxBoots,
      env,
      idleTimeoutMs,
      stallTimeoutMs,
      log,
      onConsoleLine: opts.onConsoleLine ? (line) => opts.onConsoleLine?.(kernel.release, line) : undefined,
      boot: opts.boot ?? bootGuest,
      node: process.execPath,
      cli,
      prefetch: guestPrefetch(process.execPath, repoRoot),
      cwd: repoRoot,
      keepPaths,
    });
    outcomes.push(outcome);
    const first = outcome.firstResultMs !== null ? `; first result ${(outcome.firstResultMs / 1000).toFixed(0)} s after start` : '';
    log(
      `daxpin vm: ${kernel.release}: ${outcome.recorded.length}/${outcome.planned.length} cases recorded` +
        ` (${outcome.crashed.length} crashed), ${outcome.notRun.length} not run, ${outcome.boots.length} boot(s), ${formatElapsed(outcome.wallMs)}` +
        ` (${accel}${first}); ${outcome.file}`,
    );
    for (const v of outcome.violations) log(`  VIOLATION ${kernel.release} ${v}`);
  }
  const violations = outcomes.some((k) => k.violations.length > 0);
  const failed = outcomes.some((k) => k.error !== null);
  return { exitCode: violations ? 1 : failed ? 2 : 0, outDir, kernels: outcomes };
}
