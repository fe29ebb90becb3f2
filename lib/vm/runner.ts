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
// mkfs) continues with the rest, up to --max-boots (kernel-run.ts).

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Config, MatrixName } from '../cases/matrix';
import { newRunId } from '../engine/run';
import { DaxpinError, reason } from '../errors';
import { writeFileSynced } from '../host/durable';
import { HoldMode } from '../engine/hold';
import { CASE_ALLOWANCE_MS, RUN_DEFAULTS } from '../run-options';
import { Accel, probeAccel } from './accel';
import { GUEST_PRIVATE_DIRS, guestPrefetch, hiddenInGuest, keepInGuest } from './guest';
import { buildInitramfs } from './initramfs';
import { KernelOutcome, runKernel } from './kernel-run';
import { Kernel, parseKernelSpecs, resolveKernels } from './kernels';
import { PlannedCase, planCases, resolveConfigs } from './plan';
import { ensureHostPackages } from './provision';
import { VmProgress, formatElapsed } from './progress';
import { BootOptions, BootResult, bootGuest } from './qemu';

/** What `daxpin run` with no --dir/--scratch/--device boots: the newest kernel the archive has. */
export const DEFAULT_KERNELS = ['latest'];
export const DEFAULT_MAX_BOOTS = 8;
export const DEFAULT_PMEM_MB = 1024;
export const DEFAULT_MEM_MB = 2048;
/** mkfs.xfs (xfsprogs >= 5.19) refuses filesystems below 300 MB (lib/configs/setup.ts XFS_MIN_MB). */
const XFS_MIN_PMEM_MB = 300;
/**
 * vCPUs a guest gets by default, and so how many guests share the host (`--jobs`). One:
 * a guest sleeps through much of each case (holds, settles), and two guests × 1 vCPU did
 * the same kernels in about half the time of 1 guest × 2 vCPUs (`bench --only guests`,
 * bench/README.md). A single kernel still gets every core (guestShape).
 */
export const DEFAULT_GUEST_CPUS = 1;
/** A guest never gets more: pin and layout op need two CPUs at once, a third buys nothing. */
const MAX_GUEST_CPUS = 2;
/** The shortest idle timeout, and the margin on top of a case's longest legitimate silence. */
const MIN_IDLE_TIMEOUT_MS = 180_000;
const IDLE_MARGIN_MS = 60_000;
/** The stall timer (no new result) gives a guest this much longer than the idle timeout. */
const STALL_AFTER_IDLE_MS = 120_000;

export interface VmOptions {
  /** Kernel specs (see lib/vm/kernels.ts); empty or missing: DEFAULT_KERNELS. */
  kernels?: string[];
  /** Config names; default every config of lib/cases/matrix CONFIGS. */
  config?: string[];
  /** Case globs (case id or config/caseId). */
  cases?: string[];
  matrix?: MatrixName;
  holdMs?: number;
  /** How the guest releases pins (`run --hold-mode`, `--dwell-ms`); default the guest's. */
  holdMode?: HoldMode;
  dwellMs?: number;
  settleMs?: number;
  /** Canary KiB the guest writes after each op (`run --canary-kb`); default: the guest's default. */
  canaryKb?: number;
  /** Runs of each case in the guest (`run --repeat`). */
  repeat?: number;
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
  /** Guests at once (each kernel is one guest); default: as many as the host's cores give DEFAULT_GUEST_CPUS each. */
  jobs?: number;
  /** The host's cores; default os.availableParallelism(). */
  hostCores?: number;
  /** The guest boot; tests replace it. */
  boot?: (o: BootOptions) => Promise<BootResult>;
}

export interface VmResult {
  exitCode: number;
  outDir: string | null;
  kernels: KernelOutcome[];
}

/** The idle timeout a boot needs: the longest a case may legitimately be silent, plus margin. */
export function idleTimeoutFor(holdMs: number, settleMs: number): number {
  return Math.max(MIN_IDLE_TIMEOUT_MS, CASE_ALLOWANCE_MS + holdMs + settleMs + IDLE_MARGIN_MS);
}

/**
 * How many guests run at once and with how many vCPUs each: never more vCPUs in all than
 * the host has cores, never more guests than kernels; spare cores go to the guests.
 */
export function guestShape(hostCores: number, kernels: number, jobs?: number): { jobs: number; cpus: number } {
  const cores = Math.max(1, hostCores);
  if (jobs !== undefined && (!Number.isInteger(jobs) || jobs < 1 || jobs > cores)) {
    throw new DaxpinError('EUSAGE', `--jobs must be between 1 and ${cores} (the host's cores; each guest needs a vCPU), got ${jobs}`);
  }
  const wanted = jobs ?? Math.max(1, Math.floor(cores / DEFAULT_GUEST_CPUS));
  const n = Math.max(1, Math.min(wanted, kernels));
  return { jobs: n, cpus: Math.max(1, Math.min(MAX_GUEST_CPUS, Math.floor(cores / n))) };
}

/** Runs `work` on every item, at most `jobs` at once; results in the items' order. */
export async function inParallel<T, R>(items: T[], jobs: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, items.length) }, lane));
  return results;
}

/** `daxpin vm` (and `daxpin run` without --dir/--scratch/--device). Never throws for bad input: prints one line, exit 2. */
export async function vmCommand(opts: VmOptions): Promise<VmResult> {
  const progress = new VmProgress(opts.log ? { write: (text: string) => opts.log?.(text.replace(/\n$/, '')) } : process.stderr, !opts.log && process.stderr.isTTY === true);
  const log = (line: string) => progress.log(line);
  try {
    return await runVm(checkOptions(opts), opts, log, progress);
  } catch (err) {
    if (err instanceof DaxpinError) {
      log(`daxpin: ${err.message}`);
      return { exitCode: 2, outDir: null, kernels: [] };
    }
    throw err;
  }
}

/** The options, checked and with their defaults: everything that can be refused before anything is fetched. */
interface VmPlan {
  specs: string[];
  configs: Config[];
  matrix: MatrixName;
  planned: PlannedCase[];
  holdMs: number;
  settleMs: number;
  maxBoots: number;
  pmemMb: number;
}

function checkOptions(opts: VmOptions): VmPlan {
  const specs = parseKernelSpecs(opts.kernels && opts.kernels.length > 0 ? opts.kernels : DEFAULT_KERNELS).map((s) => s.spec);
  const configs = resolveConfigs(opts.config);
  const matrix: MatrixName = opts.matrix ?? RUN_DEFAULTS.matrix;
  const maxBoots = opts.maxBoots ?? DEFAULT_MAX_BOOTS;
  if (!Number.isInteger(maxBoots) || maxBoots < 1) throw new DaxpinError('EUSAGE', `--max-boots must be 1 or more, got ${maxBoots}`);
  const pmemMb = opts.pmemMb ?? DEFAULT_PMEM_MB;
  if (pmemMb < 256) throw new DaxpinError('EUSAGE', `--pmem-mb must be at least 256, got ${pmemMb}`);
  if (pmemMb < XFS_MIN_PMEM_MB && configs.some((c) => c.fsType === 'xfs')) {
    throw new DaxpinError(
      'EUSAGE',
      `--pmem-mb ${pmemMb} is too small for XFS (mkfs.xfs refuses filesystems below 300 MB): give at least ${XFS_MIN_PMEM_MB}, or only ext4/tmpfs configs`,
    );
  }
  const planned = planCases(configs, matrix, opts.cases);
  if (planned.length === 0) {
    throw new DaxpinError('EUSAGE', `no case matches ${opts.cases?.map((c) => `"${c}"`).join(', ') ?? 'the plan'}; see daxpin list`);
  }
  const holdMs = opts.holdMs ?? RUN_DEFAULTS.holdMs;
  const settleMs = opts.settleMs ?? RUN_DEFAULTS.settleMs;
  return { specs, configs, matrix, planned, holdMs, settleMs, maxBoots, pmemMb };
}

/** This daxpin and node as the guest must see them: the CLI, the repo root, and host dirs to bind in. */
function guestView(): { cli: string; repoRoot: string; keepPaths: string[] } {
  const cli = path.resolve(__dirname, '..', 'cli.js');
  if (!fs.existsSync(cli)) throw new DaxpinError('EUSAGE', `${cli} is missing: build daxpin first (npx tsc -p .)`);
  // The guest runs this very daxpin and node from the host's root, shared read-only.
  const repoRoot = path.resolve(__dirname, '..', '..', '..');
  // daxpin's root and node's prefix: checked out under /tmp they are bound into the guest.
  const keepPaths: string[] = [];
  for (const dir of [fs.realpathSync(repoRoot), path.dirname(path.dirname(fs.realpathSync(process.execPath)))]) {
    const keep = keepInGuest(dir);
    if (keep) keepPaths.push(keep);
    else if (hiddenInGuest(dir)) throw new DaxpinError('EUSAGE', `${hiddenInGuest(dir)}: install daxpin (and node) outside ${GUEST_PRIVATE_DIRS.join(', ')}`);
  }
  return { cli, repoRoot, keepPaths };
}

/** Every kernel is resolved (and fetched) before the first boot: a bad spec fails now, not an hour in. */
async function resolveAll(specs: string[], log: (line: string) => void): Promise<{ spec: string; kernel: Kernel }[]> {
  const kernels: { spec: string; kernel: Kernel }[] = [];
  for (const spec of specs) {
    for (const kernel of await resolveKernels(spec, { log })) {
      const same = kernels.find((k) => k.kernel.release === kernel.release);
      if (same) {
        log(`daxpin vm: --kernel ${spec} is ${kernel.release} again (as --kernel ${same.spec}); booted once`);
        continue;
      }
      kernels.push({ spec, kernel });
    }
  }
  return kernels;
}

async function runVm(p: VmPlan, opts: VmOptions, log: (line: string) => void, progress: VmProgress): Promise<VmResult> {
  const view = guestView();
  if (process.getuid?.() !== 0) throw new DaxpinError('EUSAGE', 'daxpin vm needs root (qemu shares / with the guest, and the guest runs as root)');
  await ensureHostPackages({ noInstall: opts.install === false || opts.noInstall === true, log });
  const kernels = await resolveAll(p.specs, log);
  const shape = guestShape(opts.hostCores ?? os.availableParallelism(), kernels.length, opts.jobs);

  const runId = opts.runId ?? newRunId();
  const outDir = path.resolve(opts.outDir ?? `daxpin-vm-${runId}`);
  fs.mkdirSync(outDir, { recursive: true });
  for (const { kernel } of kernels) {
    const file = path.join(outDir, `${kernel.release}.jsonl`);
    if (fs.existsSync(file)) throw new DaxpinError('EUSAGE', `${file} exists already; give another --out-dir`);
  }
  const env: Record<string, string> = { ...opts.env };
  if (process.env.DAXPIN_TEST_PANIC_AT && env.DAXPIN_TEST_PANIC_AT === undefined) env.DAXPIN_TEST_PANIC_AT = process.env.DAXPIN_TEST_PANIC_AT;
  const idleTimeoutMs = opts.idleTimeoutMs ?? idleTimeoutFor(p.holdMs, p.settleMs);
  const stallTimeoutMs = opts.stallTimeoutMs ?? idleTimeoutMs + STALL_AFTER_IDLE_MS;
  log(
    `daxpin vm: ${kernels.map((k) => k.kernel.release).join(', ')}: ${p.planned.length} cases each (${p.matrix} matrix; ${p.configs.map((c) => c.name).join(', ')}); results in ${outDir}` +
      (kernels.length > 1 ? `; ${shape.jobs} guest(s) at once, ${shape.cpus} vCPU(s) each` : ''),
  );

  const outcomes = await inParallel(kernels, shape.jobs, async ({ spec, kernel }): Promise<KernelOutcome> => {
    const t0 = Date.now();
    let initramfs: string;
    let accel: 'tcg' | 'kvm';
    try {
      initramfs = await buildInitramfs(kernel);
      accel = opts.accel === 'kvm' ? 'kvm' : opts.accel === 'tcg' ? 'tcg' : await probeAccel(kernel, initramfs);
    } catch (err) {
      const message = reason(err);
      log(`daxpin vm: ${kernel.release}: ${message}`);
      return unbootable(spec, kernel, p.planned, message, Date.now() - t0);
    }
    progress.start(kernel.release, p.planned.length);
    const outcome = await runKernel({
      spec,
      kernel,
      initramfs,
      accel,
      cpus: shape.cpus,
      configs: p.configs,
      matrix: p.matrix,
      cases: opts.cases,
      holdMs: p.holdMs,
      holdMode: opts.holdMode ?? RUN_DEFAULTS.holdMode,
      dwellMs: opts.dwellMs ?? RUN_DEFAULTS.dwellMs,
      settleMs: p.settleMs,
      canaryKb: opts.canaryKb,
      repeat: opts.repeat,
      pmemMb: p.pmemMb,
      memMb: opts.memMb ?? DEFAULT_MEM_MB,
      outDir,
      runId: `${runId}-${kernel.release}`,
      argv: opts.argv ?? process.argv.slice(2),
      maxBoots: p.maxBoots,
      env,
      idleTimeoutMs,
      stallTimeoutMs,
      log,
      onBoot: (boot) => progress.boot(kernel.release, boot),
      onCase: (c, done, line, remarkable) => progress.caseDone(kernel.release, c.config, done, line, remarkable),
      onConsoleLine: opts.onConsoleLine ? (line) => opts.onConsoleLine?.(kernel.release, line) : undefined,
      boot: opts.boot ?? bootGuest,
      node: process.execPath,
      // A developer's way to profile the guest side (bench/README.md): DAXPIN_GUEST_NODE_FLAGS='--cpu-prof --cpu-prof-dir=DIR'.
      nodeFlags: (process.env.DAXPIN_GUEST_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean),
      cli: view.cli,
      prefetch: guestPrefetch(process.execPath, view.repoRoot),
      cwd: view.repoRoot,
      keepPaths: view.keepPaths,
    }).finally(() => progress.finish(kernel.release));
    logKernelDone(outcome, log);
    return outcome;
  });
  writeSummary(outDir, outcomes);
  const violations = outcomes.some((k) => k.violations.length > 0);
  const failed = outcomes.some((k) => k.error !== null);
  return { exitCode: violations ? 1 : failed ? 2 : 0, outDir, kernels: outcomes };
}

/** The outcome of a kernel that could not be booted at all (no initramfs, no accelerator). */
function unbootable(spec: string, kernel: Kernel, planned: PlannedCase[], error: string, wallMs: number): KernelOutcome {
  const keys = planned.map((p) => p.key);
  return {
    spec,
    release: kernel.release,
    file: '',
    accel: null,
    boots: [],
    planned: keys,
    recorded: [],
    crashed: [],
    notRun: keys,
    violations: [],
    error,
    firstResultMs: null,
    wallMs,
  };
}

function logKernelDone(outcome: KernelOutcome, log: (line: string) => void): void {
  const first = outcome.firstResultMs !== null ? `; first result ${(outcome.firstResultMs / 1000).toFixed(0)} s after start` : '';
  log(
    `daxpin vm: ${outcome.release}: ${outcome.recorded.length}/${outcome.planned.length} cases recorded` +
      ` (${outcome.crashed.length} crashed), ${outcome.notRun.length} not run, ${outcome.boots.length} boot(s), ${formatElapsed(outcome.wallMs)}` +
      ` (${outcome.accel}${first}); ${outcome.file}`,
  );
  for (const v of outcome.violations) log(`  VIOLATION ${outcome.release} ${v}`);
}

/** `vm-summary.json` in the out dir: each kernel's outcome (times, boots, what ran), for scripts and the bench. */
function writeSummary(outDir: string, outcomes: KernelOutcome[]): void {
  writeFileSynced(path.join(outDir, 'vm-summary.json'), `${JSON.stringify({ kernels: outcomes }, null, 2)}\n`);
}
