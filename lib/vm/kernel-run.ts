// One kernel's run: boots the guest as often as crashes need (up to maxBoots), copies
// every line the guest records into the kernel's run file as it appears, and records
// what a panic or wedge cut short. How each boot ended is decided in attribution.ts.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Case, Config, MatrixName, findConfig } from '../cases/matrix';
import { DurableLines, writeFileSynced } from '../host/durable';
import { register } from '../host/lifecycle';
import { CaseRecord, ConfigRecord, KernelLogRecord, Provenance, planKey, unmeasuredCase } from '../outcome';
import { kernelConfigFrom, toolProvenance } from '../host/provenance';
import { configRecord, endRecord, runRecord } from '../record';
import { HoldMode } from '../engine/hold';
import { deviceRunArgv } from '../run-options';
import { configViolations, invariantViolations, kernelLogRecordViolations, outcomeClass } from '../verdict';
import { BootAttribution, attributeBoot } from './attribution';
import { BootConsole, cleanConsoleLine, consoleKernelLog, lastGuestLine } from './console';
import { GUEST_DEVICE, GUEST_HOSTNAME } from './guest';
import { Kernel } from './kernels';
import { planCases } from './plan';
import { BOOT_PARAMS, BootOptions, BootResult, memoryLayout } from './qemu';
import { formatElapsed } from './progress';
import { LineTailer } from './tail';

/** Console lines attached to a crashed case. */
export const CONSOLE_EXCERPT_LINES = 60;
/** How often the host copies the guest's new lines and checks for a stall. */
const POLL_MS = 500;

/**
 * What the host knows of a guest before it boots: the kernel package and its build
 * config, the qemu command line and emulated pmem, and daxpin and its tools (the guest
 * runs the host's root). The guest's own view comes with each boot's 'boot' record.
 */
export function guestProvenance(o: Pick<KernelRunOptions, 'kernel' | 'accel' | 'cpus' | 'memMb' | 'pmemMb'>): Provenance {
  const mem = memoryLayout(o.memMb, o.pmemMb);
  const cmdline = ['console=ttyS0', mem.memmap, ...BOOT_PARAMS].join(' ');
  const tools = toolProvenance();
  return {
    procVersion: null,
    cmdline,
    kernelPackage: `linux-image-${o.kernel.release} ${o.kernel.origin}`,
    kernelConfig: kernelConfigFrom(path.join(path.dirname(o.kernel.vmlinuz), `config-${o.kernel.release}`), false),
    ...tools,
    pmem: [{ device: GUEST_DEVICE, bytes: o.pmemMb * 1024 * 1024, namespace: null, mode: null, memmap: mem.memmap.slice('memmap='.length) }],
    kernelLogFrom: 'boot',
    qemu: { version: tools.tools.qemu ?? null, machine: 'pc', accel: o.accel, cpus: o.cpus ?? 2, memMb: o.memMb, pmemMb: o.pmemMb, cmdline },
  };
}

export interface KernelRunOptions {
  spec: string;
  kernel: Kernel;
  initramfs: string;
  accel: 'tcg' | 'kvm';
  /** Guest vCPUs; default 2. */
  cpus?: number;
  configs: Config[];
  matrix: MatrixName;
  cases?: string[];
  holdMs: number;
  holdMode?: HoldMode;
  dwellMs?: number;
  settleMs: number;
  canaryKb?: number;
  repeat?: number;
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
  /** A boot starts. */
  onBoot?: (boot: number) => void;
  /**
   * A case line is written (the guest's, or a crashed one): `line` says it for people,
   * `remarkable` when it is worth a line of its own (a violation, not done). Without
   * this hook every case line goes to `log`.
   */
  onCase?: (c: CaseRecord, done: number, line: string, remarkable: boolean) => void;
  boot: (o: BootOptions) => Promise<BootResult>;
  /** Host directories under /tmp or /run the guest must be given (see keepInGuest). */
  keepPaths?: string[];
  /** `node` and `dist/lib/cli.js` as the guest (the host's root) sees them. */
  node: string;
  /** Flags for the guest's node before the script (DAXPIN_GUEST_NODE_FLAGS, e.g. --cpu-prof: node refuses it in NODE_OPTIONS). */
  nodeFlags?: string[];
  cli: string;
  /** Files the guest's init reads ahead for the command (guestPrefetch). */
  prefetch?: string[];
  /** The guest command's working directory (must exist in the guest). */
  cwd: string;
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

/** How the guest names a config being set up in the inflight file: `<config>/`. */
function inflightConfig(text: string): string | null {
  const m = /^([^/\s]+)\/$/.exec(text);
  return m ? m[1] : null;
}

function readText(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

/** What one boot produced, before it is attributed. */
interface BootRun {
  boot: number;
  result: BootResult;
  stalled: boolean;
  cases: number;
  configs: boolean;
  console: BootConsole;
  /** Host time the boot started. */
  startedAt: number;
}

/** Runs the plan on one kernel, booting as often as crashes need (up to maxBoots). */
export async function runKernel(o: KernelRunOptions): Promise<KernelOutcome> {
  const run = new KernelRun(o);
  const unregister = register(`daxpin vm run file ${o.kernel.release}`, () => run.finish(true));
  try {
    for (let boot = 1; boot <= o.maxBoots; boot++) {
      if (run.remaining().length === 0) break;
      const produced = await run.boot(boot);
      if (!run.settle(produced)) break;
    }
  } finally {
    run.finish(false);
    unregister();
  }
  if (run.outcome.error) run.say(run.outcome.error);
  return run.outcome;
}

/** The state of one kernel's run file: what is recorded, what the next boot skips. */
class KernelRun {
  readonly outcome: KernelOutcome;
  private readonly t0 = Date.now();
  private readonly release: string;
  private readonly byKey: Map<string, Case>;
  private readonly plannedKeys: string[];
  private readonly kernelDir: string;
  /** The results share: the guest sees it at this same path. */
  private readonly share: string;
  private readonly skipFile: string;
  private readonly inflightFile: string;
  private readonly out: DurableLines;
  private readonly recorded = new Set<string>();
  private readonly configsSeen = new Set<string>();
  /** Keys the guest must not run again: recorded, crashed, or of a config whose set-up crashed the kernel. */
  private readonly skip = new Set<string>();
  private tailer: LineTailer | null = null;
  /** Boots in a row whose kernel died before the guest command started. */
  private deadBeforeCommand = 0;
  private finished = false;

  constructor(private readonly o: KernelRunOptions) {
    this.release = o.kernel.release;
    const planned = planCases(o.configs, o.matrix, o.cases);
    this.byKey = new Map(planned.map((p) => [p.key, p.case]));
    this.plannedKeys = planned.map((p) => p.key);
    this.kernelDir = path.join(o.outDir, this.release);
    fs.mkdirSync(path.join(this.kernelDir, 'guest'), { recursive: true });
    this.share = fs.realpathSync(path.join(this.kernelDir, 'guest'));
    this.skipFile = path.join(this.share, 'skip');
    this.inflightFile = path.join(this.share, 'inflight');
    const file = path.join(o.outDir, `${this.release}.jsonl`);
    this.out = new DurableLines(file, 'create');
    this.outcome = {
      spec: o.spec,
      release: this.release,
      file,
      accel: o.accel,
      boots: [],
      planned: this.plannedKeys,
      recorded: [],
      crashed: [],
      notRun: [],
      violations: [],
      error: null,
      firstResultMs: null,
      wallMs: 0,
    };
    const run = runRecord({
      runId: o.runId,
      kernel: this.release,
      host: os.hostname(),
      startedAt: new Date(this.t0),
      argv: o.argv,
      holdMs: o.holdMs,
      ...(o.holdMode !== undefined ? { holdMode: o.holdMode, dwellMs: o.dwellMs } : {}),
      settleMs: o.settleMs,
      planned: this.plannedKeys,
      runner: 'vm',
      accel: o.accel,
      provenance: guestProvenance(o),
    });
    this.out.writeLine(JSON.stringify(run));
  }

  say(line: string): void {
    this.o.log(`daxpin vm: ${this.release}: ${line}`);
  }

  remaining(): string[] {
    return this.plannedKeys.filter((k) => !this.skip.has(k));
  }

  private noteViolations(what: string, n: number): void {
    if (n > 0) this.outcome.violations.push(what);
  }

  private noteCase(c: CaseRecord, key: string, suffix: string, violations: number): void {
    this.recorded.add(key);
    this.skip.add(key);
    const line = `daxpin vm: ${this.release} [${this.recorded.size}/${this.plannedKeys.length}] ${c.config} ${c.caseId}: ${suffix} (${formatElapsed(Date.now() - this.t0)})`;
    if (this.o.onCase) this.o.onCase(c, this.recorded.size, line, violations > 0 || c.status !== 'done');
    else this.o.log(line);
  }

  /** Copies the guest's new case and config lines into the run file; returns how many cases and configs not seen before. */
  copyGuestLines(): { cases: number; configs: number } {
    const copied = { cases: 0, configs: 0 };
    if (!this.tailer) return copied;
    for (const line of this.tailer.poll()) {
      let rec: { record?: unknown };
      try {
        rec = JSON.parse(line) as typeof rec;
      } catch {
        this.say(`guest wrote a line that is not JSON; left out: ${line.slice(0, 120)}`);
        continue;
      }
      if (rec.record === 'case') {
        const c = rec as CaseRecord;
        const key = planKey(c.config, c.caseId);
        this.out.writeLine(line);
        copied.cases++;
        if (this.outcome.firstResultMs === null) this.outcome.firstResultMs = Date.now() - this.t0;
        if (c.kernel !== this.release && this.recorded.size === 0) this.say(`the guest reports kernel ${c.kernel}, not ${this.release}`);
        if (!this.byKey.has(key)) this.say(`guest recorded ${key}, which is not in the plan`);
        const v = invariantViolations(c);
        this.noteViolations(key, v.length);
        this.noteCase(c, key, `${outcomeClass(c)}${v.length ? ` !! ${v.map((x) => x.kind).join(', ')}` : ''}`, v.length);
      } else if (rec.record === 'config') {
        const c = rec as ConfigRecord;
        this.out.writeLine(line);
        if (!this.configsSeen.has(c.config)) copied.configs++;
        this.configsSeen.add(c.config);
        this.noteViolations(`config ${c.config}`, configViolations(c).length);
        const fsck = c.fsck ? `, ${c.fsck.tool} ${c.fsck.ok ? 'clean' : `exit ${c.fsck.exitCode}`}` : '';
        this.say(`config ${c.config}: ${c.error ? `not set up: ${c.error}` : `DAX ${c.daxVerified ? 'verified by statx' : 'off'}${fsck}`}`);
      } else if (rec.record === 'boot') {
        // Each boot's own provenance (/proc/version, cmdline, pmem as the guest sees them).
        this.out.writeLine(line);
      } else if (rec.record === 'kernel-log') {
        // The guest's kernel log outside its cases (set-up, between cases), from boot on.
        const k = rec as KernelLogRecord;
        this.out.writeLine(line);
        this.noteViolations(`kernel log (${k.phase}${k.config ? ` ${k.config}` : ''})`, kernelLogRecordViolations(k).length);
      }
      // The guest's end record (per boot) is not copied: the host writes the run's one end record.
    }
    return copied;
  }

  /** Boots the guest once on what is left of the plan, copying its lines as they come. */
  async boot(boot: number): Promise<BootRun> {
    writeFileSynced(this.skipFile, [...this.skip].map((k) => `${k}\n`).join(''));
    fs.rmSync(this.inflightFile, { force: true });
    const bootOut = path.join(this.share, `boot-${boot}.jsonl`);
    fs.rmSync(bootOut, { force: true });
    this.tailer = new LineTailer(bootOut);
    const bootConsole = new BootConsole(path.join(this.kernelDir, `boot-${boot}.console.log`));
    this.say(`boot ${boot} (${this.o.accel}), ${this.remaining().length} of ${this.plannedKeys.length} cases to run`);
    this.o.onBoot?.(boot);

    const produced = { boot, stalled: false, cases: 0, configs: false, console: bootConsole, startedAt: Date.now() };
    const abort = new AbortController();
    let lastProgress = Date.now();
    let lastInflight = '';
    const take = () => {
      const copied = this.copyGuestLines();
      produced.cases += copied.cases;
      if (copied.configs > 0) produced.configs = true;
      return copied.cases;
    };
    const poller = setInterval(() => {
      const n = take();
      const inflight = readText(this.inflightFile) ?? '';
      if (n > 0 || inflight !== lastInflight) lastProgress = Date.now();
      lastInflight = inflight;
      if (Date.now() - lastProgress > this.o.stallTimeoutMs && !abort.signal.aborted) {
        produced.stalled = true;
        abort.abort();
      }
    }, POLL_MS);

    const o = this.o;
    const argv = deviceRunArgv({
      device: GUEST_DEVICE,
      out: bootOut,
      runId: o.runId,
      skipFile: this.skipFile,
      inflight: this.inflightFile,
      matrix: o.matrix,
      holdMs: o.holdMs,
      holdMode: o.holdMode,
      dwellMs: o.dwellMs,
      settleMs: o.settleMs,
      canaryKb: o.canaryKb,
      repeat: o.repeat,
      configs: o.configs.map((c) => c.name),
      cases: o.cases,
    });
    let result: BootResult;
    try {
      result = await o.boot({
        kernel: o.kernel,
        initramfs: o.initramfs,
        memMb: o.memMb,
        pmemMb: o.pmemMb,
        cpus: o.cpus,
        accel: o.accel,
        guestCommand: [o.node, ...(o.nodeFlags ?? []), o.cli, ...argv],
        env: o.env,
        cwd: o.cwd,
        keepPaths: o.keepPaths,
        prefetch: o.prefetch,
        resultsDir: this.share,
        idleTimeoutMs: o.idleTimeoutMs,
        signal: abort.signal,
        onConsoleLine: (line) => {
          bootConsole.add(line);
          o.onConsoleLine?.(line);
        },
      });
    } finally {
      clearInterval(poller);
      bootConsole.close();
    }
    take();
    if (this.tailer.torn) this.say(`boot ${boot}: the guest's last line was cut off (${this.tailer.torn.length} bytes); left out`);
    return { ...produced, result };
  }

  /** Records how the boot ended and what it cut short; false when the kernel is done with. */
  settle(b: BootRun): boolean {
    const { result, boot } = b;
    const inflight = (readText(this.inflightFile) ?? '').trim() || null;
    const inflightAt = fs.existsSync(this.inflightFile) ? fs.statSync(this.inflightFile).mtimeMs : b.startedAt;
    if (result.commandStartMs !== null) this.deadBeforeCommand = 0;
    const setUp = inflight !== null ? inflightConfig(inflight) : null;
    const attribution = attributeBoot({
      boot,
      maxBoots: this.o.maxBoots,
      exitCode: result.exitCode,
      panicked: result.panicked,
      wedged: result.wedged,
      stalled: b.stalled,
      timedOut: result.timedOut,
      setupError: result.setupError,
      commandStarted: result.commandStartMs !== null,
      cases: b.cases,
      configs: b.configs,
      inflight,
      inflightCase: inflight !== null && this.byKey.has(inflight) && !this.recorded.has(inflight) ? inflight : null,
      inflightConfig: setUp !== null && !this.configsSeen.has(setUp) && findConfig(setUp) ? setUp : null,
      deadBeforeCommand: this.deadBeforeCommand,
      idleTimeoutMs: this.o.idleTimeoutMs,
      stallTimeoutMs: this.o.stallTimeoutMs,
      lastGuestMessage: lastGuestLine(result.consoleTail),
      lastConsoleLine: cleanConsoleLine(result.consoleTail[result.consoleTail.length - 1] ?? ''),
      console: b.console.file,
    });
    this.summarize(b, attribution.ended, inflight);
    return this.act(b, attribution, inflightAt);
  }

  private summarize(b: BootRun, ended: string, inflight: string | null): void {
    const { result, boot } = b;
    const kernelWarnings = b.console.warnings;
    this.outcome.boots.push({
      boot,
      ended,
      cases: b.cases,
      commandStartMs: result.commandStartMs,
      durationMs: result.durationMs,
      inflight,
      console: b.console.file,
      oopsed: result.oopsed,
      kernelWarnings,
    });
    const up = result.commandStartMs !== null ? `guest up after ${(result.commandStartMs / 1000).toFixed(1)} s, ` : '';
    this.say(`boot ${boot} ended (${ended}) after ${formatElapsed(result.durationMs)}: ${up}${b.cases} cases`);
    if (kernelWarnings.length > 0) {
      this.say(`boot ${boot}: the console showed ${kernelWarnings.map((w) => `"${w}"`).join(', ')} (${b.console.file})`);
    }
  }

  private act(b: BootRun, { action }: BootAttribution, inflightAt: number): boolean {
    switch (action.kind) {
      case 'stop':
        this.outcome.error = action.error;
        return false;
      case 'finished':
        if (action.note) this.say(action.note);
        return false;
      case 'case':
        this.recordCrashedCase(b, action.key, action.status, action.error, action.what, inflightAt);
        break;
      case 'config':
        this.recordCrashedConfig(action.config, action.error);
        this.say(action.note);
        break;
      case 'retry':
        this.deadBeforeCommand++;
        this.say(action.note);
        break;
      case 'resume':
        this.say(action.note);
        break;
    }
    const left = this.remaining().length > 0;
    if (b.boot === this.o.maxBoots && left) this.outcome.error = `gave up after ${this.o.maxBoots} boots (--max-boots)`;
    else if (left) this.say('resuming in a fresh boot');
    return true;
  }

  private recordCrashedCase(b: BootRun, key: string, status: 'crashed' | 'error', error: string, what: string, inflightAt: number): void {
    const c = this.byKey.get(key) as Case;
    const rec = crashedRecord(c, {
      runId: this.o.runId,
      kernel: this.release,
      holdMs: this.o.holdMs,
      settleMs: this.o.settleMs,
      status,
      error,
      caseConsole: b.console.since(inflightAt - 1000),
      consoleTail: b.result.consoleTail,
      startedAt: new Date(inflightAt),
      durationMs: b.startedAt + b.result.durationMs - inflightAt,
    });
    this.out.writeLine(JSON.stringify(rec));
    if (rec.status === 'crashed') this.outcome.crashed.push(key);
    const violations = invariantViolations(rec).length;
    this.noteViolations(key, violations);
    this.noteCase(rec, key, `${rec.status} !! ${what}`, violations);
  }

  private recordCrashedConfig(name: string, error: string): void {
    const config = findConfig(name) as Config;
    const rec = configRecord({ runId: this.o.runId, kernel: this.release }, config, { device: GUEST_DEVICE }, { error });
    this.out.writeLine(JSON.stringify(rec));
    this.configsSeen.add(config.name);
    for (const key of this.plannedKeys) if (this.byKey.get(key)?.config.name === config.name) this.skip.add(key);
  }

  /** Copies what the guest wrote last and ends the run file (also from a fatal signal). */
  finish(interrupted: boolean): void {
    if (this.finished) return;
    this.finished = true;
    this.copyGuestLines();
    this.outcome.recorded = [...this.recorded];
    this.outcome.notRun = this.plannedKeys.filter((k) => !this.recorded.has(k));
    this.outcome.wallMs = Date.now() - this.t0;
    this.out.writeLine(JSON.stringify(endRecord(this.o.runId, this.outcome.notRun, interrupted, this.outcome.error)));
    this.out.close();
  }
}
