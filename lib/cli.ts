#!/usr/bin/env node
// daxpin command line. Exit codes: 0 ran, 1 an invariant was violated,
// 2 usage or environment error (always with one clear line on stderr).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { CONFIGS, Config, LAYOUT_OPS, MAPPINGS, MatrixName, PIN_METHODS, findConfig, globToRegExp } from './cases/matrix';
import { planKey } from './outcome';
import { ConfigSource, RunSummary, newRunId, plan, runDoubts, runMatrix, Progress } from './engine/run';
import { DurableLines, MarkerFile } from './host/durable';
import { findLeftovers, removeLeftovers, workDirPrefix } from './host/leftovers';
import type { KtapConsole } from './report/ktap';
import { CaseTiming } from './engine/orchestrator';
import { HoldMode } from './engine/hold';
import { prepareExistingDir, prepareOnDevice, prepareScratch } from './configs/setup';
import { checkScratchDevice } from './configs/safety';
import { register, signalExitCode, stopRequested } from './host/lifecycle';
import { readMountinfo } from './host/mountinfo';
import { invariantViolations, configViolations, kernelLogRecordViolations, outcomeClass } from './verdict';
import { RUN_DEFAULTS } from './run-options';
import { DaxpinError, reason } from './errors';
// report/commands (every report format: 15 modules) is imported by `report` and `compare`
// only: `run` in a TCG guest would pay 0.3 s to load it. report/ktap only with --ktap-console.

/** A usage error: one line on stderr, exit 2. */
const usage = (message: string) => new DaxpinError('EUSAGE', message);

const MATRICES: MatrixName[] = ['default', 'full', 'smoke'];
const SCRATCH_CONFIGS = ['ext4', 'xfs', 'tmpfs'];

/** A whole-number option; `unit` names what it counts, for the message ("milliseconds", "KiB"). */
function intOption(name: string, min: number, max: number, unit: string) {
  return (value: string): number => {
    if (!/^\d+$/.test(value)) throw usage(`${name} must be a whole number of ${unit}, got "${value}"`);
    const n = Number(value);
    if (n < min || n > max) throw usage(`${name} must be between ${min} and ${max} ${unit}, got ${n}`);
    return n;
  };
}

const collect = (value: string, previous: string[] = []) => [...previous, ...value.split(',').filter(Boolean)];

function checkConfigs(names: string[] | undefined): Config[] | undefined {
  if (!names) return undefined;
  return names.map((n) => {
    const c = findConfig(n);
    if (!c) throw usage(`unknown config "${n}"; known: ${CONFIGS.map((x) => x.name).join(', ')}`);
    return c;
  });
}

function requireRoot(command: 'run' | 'cleanup' = 'run'): void {
  const why = command === 'run' ? 'it mounts filesystems, pins pages and reads /dev/kmsg' : 'it unmounts and detaches what an earlier daxpin left';
  if (process.getuid && process.getuid() !== 0) throw usage(`daxpin ${command} needs root (${why})`);
}

interface RunCliOptions {
  dir?: string;
  scratch?: boolean;
  device?: string;
  config?: string[];
  cases?: string[];
  matrix: MatrixName;
  holdMs: number;
  holdMode: HoldMode;
  dwellMs: number;
  settleMs: number;
  kernelLogFrom: 'boot' | 'run-start';
  out?: string;
  runId?: string;
  skipFile?: string;
  inflight?: string;
  /** The results directory is written through to the host (VM runner): no fsync. */
  writtenThrough?: boolean;
  runRecord: boolean;
  canaryKb: number;
  caseBudgetMs: number;
  /** true: /dev/console. */
  ktapConsole?: string | true;
  repeat: number;
}

async function runCommand(o: RunCliOptions): Promise<number> {
  const modes = [o.dir !== undefined, !!o.scratch, o.device !== undefined].filter(Boolean).length;
  if (modes > 1) throw usage('give only one of --dir, --scratch and --device');
  const configs = checkConfigs(o.config);
  requireRoot();
  // Loop files, mount points and FUSE mounts live here. Registered before anything is
  // made in it, so on Ctrl-C it is removed last; on a usage error it is removed too.
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), workDirPrefix()));
  const unregisterWorkDir = register(`remove ${workDir}`, () => removeWorkDir(workDir));
  try {
    return await runIn(o, configs, workDir);
  } finally {
    unregisterWorkDir();
    removeWorkDir(workDir);
  }
}

/** Never walks into a mount that is still there (a wedged FUSE mount would hang the walk). */
function removeWorkDir(dir: string): void {
  if (readMountinfo().some((e) => e.mountPoint === dir || e.mountPoint.startsWith(`${dir}/`))) return;
  fs.rmSync(dir, { recursive: true, force: true });
}

async function runIn(o: RunCliOptions, configs: Config[] | undefined, workDir: string): Promise<number> {
  const runId = o.runId ?? newRunId();
  const outPath = o.out ?? `daxpin-${os.release()}-${runId}.jsonl`;
  // A run file is new, or (the VM runner resuming a guest's run) appended to.
  const lines = new DurableLines(outPath, o.runRecord ? 'create' : 'append', o.writtenThrough ? 'written-through' : 'fsync');
  try {
    return await runInto(o, configs, workDir, runId, lines);
  } finally {
    lines.close();
  }
}

async function openKtapConsole(file: string | true, plannedKeys: string[]): Promise<KtapConsole> {
  const where = file === true ? '/dev/console' : file;
  const { KtapConsole } = await import('./report/ktap');
  try {
    return new KtapConsole(where, os.release(), plannedKeys);
  } catch (e) {
    throw usage(`cannot write --ktap-console ${where}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

async function runInto(o: RunCliOptions, configs: Config[] | undefined, workDir: string, runId: string, lines: DurableLines): Promise<number> {
  let sources: ConfigSource[];
  if (o.dir !== undefined) {
    if (configs && configs.length > 1) throw usage('--dir runs one config; give at most one --config');
    const prepared = await prepareExistingDir(o.dir, configs?.[0]?.name);
    sources = [{ config: prepared.config, prepare: async () => prepared }];
  } else if (o.scratch) {
    const chosen = configs ?? SCRATCH_CONFIGS.map((n) => findConfig(n)!);
    const dax = chosen.filter((c) => c.dax !== 'off');
    if (dax.length > 0) throw usage(`--scratch makes page-cache loop filesystems; ${dax.map((c) => c.name).join(', ')} needs --device /dev/pmemN, or no --scratch (qemu with emulated pmem)`);
    sources = chosen.map((config) => ({ config, prepare: () => prepareScratch(config, { workDir }) }));
  } else {
    const device = await checkScratchDevice(o.device!);
    sources = (configs ?? CONFIGS).map((config) => ({ config, prepare: () => prepareOnDevice(config, device, { workDir }) }));
  }
  const planned = plan(sources, o.matrix, o.cases);
  if (planned.every((p) => p.cases.length === 0)) {
    throw usage(`no case matches ${o.cases?.map((c) => `"${c}"`).join(', ') ?? 'the plan'}; see daxpin list`);
  }
  const skip = o.skipFile && fs.existsSync(o.skipFile) ? new Set(fs.readFileSync(o.skipFile, 'utf8').split('\n').filter(Boolean)) : undefined;
  const ktap = o.ktapConsole === undefined ? undefined : await openKtapConsole(o.ktapConsole, planned.flatMap((p) => p.cases.map((c) => planKey(c.config.name, c.id))).filter((k) => !skip?.has(k)));
  warnAboutLeftovers();
  const timing: CaseTiming = {
    holdMs: o.holdMs,
    holdMode: o.holdMode,
    dwellMs: o.dwellMs,
    settleMs: o.settleMs,
    signalWaitMs: RUN_DEFAULTS.signalWaitMs,
    caseBudgetMs: o.caseBudgetMs,
    canaryBytes: o.canaryKb * 1024,
  };
  const tty = process.stderr.isTTY;
  const inflight = o.inflight ? new MarkerFile(o.inflight, o.writtenThrough ? 'written-through' : 'fsync') : null;
  const summary = await runMatrix({
    sources,
    matrix: o.matrix,
    globs: o.cases,
    timing,
    out: {
      write: (line) => {
        lines.writeLine(JSON.stringify(line));
        ktap?.write(line);
      },
    },
    workDir,
    runner: 'native',
    argv: process.argv.slice(2),
    runId,
    skip,
    writeRunRecord: o.runRecord,
    repeat: o.repeat,
    kernelLogFrom: o.kernelLogFrom,
    // host/lifecycle owns the signals (INT, TERM, HUP): it tears down what was made and
    // writes the end record; the loop only has to stop starting cases.
    shouldStop: () => stopRequested() !== null,
    onCaseStart: (key) => {
      inflight?.set(`${key}\n`);
      panicIfAsked(key);
    },
    // `<config>/`: a crash during mkfs or mount is the config's, not the last case's.
    onConfigStart: (config) => {
      inflight?.set(`${config}/\n`);
    },
    // KTAP on /dev/console (a guest) is already a line per case there: each byte on an
    // emulated serial console costs, so only the cases that went wrong get a second line.
    onProgress: (p) => printProgress(p, tty && o.ktapConsole !== true),
  });
  ktap?.close();
  inflight?.close();
  printSummary(summary, lines.path);
  // A guest run (no run record: the VM runner writes it) leaves reports to the host.
  if (o.runRecord) await printFindings([lines.path], lines.path.replace(/\.jsonl$/, ''));
  const stopped = stopRequested();
  if (summary.interrupted || stopped) return signalExitCode(stopped ?? 'SIGINT');
  const violations =
    summary.cases.filter((c) => invariantViolations(c).length > 0).length +
    summary.configs.filter((c) => configViolations(c).length > 0).length +
    summary.kernelLogs.filter((k) => kernelLogRecordViolations(k).length > 0).length;
  if (violations > 0) return 1;
  const doubts = runDoubts(summary);
  for (const d of doubts) say(`in doubt: ${d}`);
  return doubts.length > 0 ? 3 : 0;
}

/** The findings summary on stderr, and the HTML report and mail beside the JSONL; never changes the exit code. */
async function printFindings(files: string[], stem: string): Promise<void> {
  try {
    const { writeRunReports } = await import('./report/artifacts');
    process.stderr.write(`${writeRunReports(files, stem).lines.join('\n')}\n`);
  } catch (e) {
    say(`no reports written: ${reason(e)}`);
  }
}

/**
 * `daxpin vm` (and `daxpin run` into guests): the plan on every kernel, `repeatBoots`
 * times over (each time in fresh boots, in its own directory), then the findings.
 */
async function vmThenReport(opts: import('./vm/runner').VmOptions, repeatBoots: number): Promise<number> {
  const { vmCommand } = await import('./vm/runner');
  const runId = opts.runId ?? newRunId();
  const outDir = path.resolve(opts.outDir ?? `daxpin-vm-${runId}`);
  const files: string[] = [];
  let violations = false;
  let failed = false;
  for (let round = 1; round <= repeatBoots; round++) {
    const r = await vmCommand({
      ...opts,
      runId: repeatBoots > 1 ? `${runId}-r${round}` : runId,
      outDir: repeatBoots > 1 ? path.join(outDir, `round-${round}`) : outDir,
    });
    files.push(...r.kernels.map((k) => k.file).filter((f) => f !== '' && fs.existsSync(f)));
    violations ||= r.exitCode === 1;
    failed ||= r.exitCode !== 0 && r.exitCode !== 1;
    if (r.exitCode === 2 && r.kernels.length === 0) break; // bad input: nothing ran
    if (stopRequested() !== null) break;
  }
  if (files.length > 0) await printFindings(files, path.join(outDir, 'report'));
  return violations ? 1 : failed ? 2 : 0;
}

function say(line: string): void {
  process.stderr.write(`daxpin: ${line}\n`);
}

/** What an earlier daxpin killed with SIGKILL left on this machine; `daxpin cleanup` removes it. */
function warnAboutLeftovers(): void {
  const left = findLeftovers();
  if (left.length === 0) return;
  say(`an earlier daxpin left ${left.length} thing(s) behind (${left.slice(0, 3).map((l) => l.what).join('; ')}${left.length > 3 ? '; …' : ''}); daxpin cleanup removes them`);
}

/**
 * Test hook for the VM runner's crash handling: DAXPIN_TEST_PANIC_AT=<glob> makes
 * the guest kernel panic (sysrq c) right before the matching case. Only inside a
 * daxpin guest (DAXPIN_RESULTS is set there), never on a host.
 */
function panicIfAsked(key: string): void {
  const glob = process.env.DAXPIN_TEST_PANIC_AT;
  if (!glob || !process.env.DAXPIN_RESULTS) return;
  if (globToRegExp(glob).test(key)) fs.writeFileSync('/proc/sysrq-trigger', 'c');
}

function printProgress(p: Progress, tty: boolean): void {
  if (p.kind === 'config') {
    process.stderr.write(`daxpin: config ${p.config}: ${p.error ? `not set up: ${p.error}` : `DAX ${p.daxVerified ? 'verified' : 'off'}`}\n`);
    return;
  }
  const r = p.record;
  const line = `[${p.index}/${p.total}] ${r.config} ${r.caseId} ${outcomeClass(r)} (${r.durationMs} ms)`;
  const bad = invariantViolations(r).length > 0;
  if (tty || bad || r.status !== 'done') process.stderr.write(`${bad ? '!! ' : ''}${line}\n`);
}

function printSummary(s: RunSummary, outPath: string): void {
  const byConfig = new Map<string, Map<string, number>>();
  for (const c of s.cases) {
    const m = byConfig.get(c.config) ?? new Map<string, number>();
    const cls = outcomeClass(c).split(' ')[0];
    m.set(cls, (m.get(cls) ?? 0) + 1);
    byConfig.set(c.config, m);
  }
  const lines = [`daxpin: ${s.cases.length} cases in ${(s.wallMs / 1000).toFixed(1)} s${s.interrupted ? ' (interrupted)' : ''}; results in ${outPath}`];
  for (const [config, counts] of byConfig) {
    const parts = [...counts.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`);
    lines.push(`  ${config.padEnd(14)} ${parts.join(', ')}`);
  }
  const violations = s.cases.filter((c) => invariantViolations(c).length > 0);
  for (const v of violations) lines.push(`  VIOLATION ${v.config}/${v.caseId}: ${invariantViolations(v).map((x) => x.kind).join(', ')}`);
  for (const c of s.configs) {
    if (c.error) lines.push(`  config ${c.config} not set up: ${c.error}`);
    else if (c.fsck && !c.fsck.ok) lines.push(`  config ${c.config}: ${c.fsck.tool} found errors`);
  }
  for (const k of s.kernelLogs) {
    const v = kernelLogRecordViolations(k);
    if (v.length) lines.push(`  VIOLATION kernel log ${k.phase}${k.config ? ` ${k.config}` : ''}${k.after ? ` after ${k.after}` : ''}: ${v.map((x) => x.detail).join('; ')}`);
  }
  const doubted = s.cases.filter((c) => c.harnessFaults?.length);
  for (const c of doubted.slice(0, 10)) lines.push(`  HARNESS FAULT ${c.config}/${c.caseId}: ${c.harnessFaults!.join('; ')}`);
  if (doubted.length > 10) lines.push(`  … and ${doubted.length - 10} more cases with harness faults`);
  if (s.notRun.length) lines.push(`  not run: ${s.notRun.length} cases`);
  process.stderr.write(`${lines.join('\n')}\n`);
}

function listCommand(o: { config?: string[]; cases?: string[]; matrix: MatrixName; json?: boolean }): number {
  const configs = checkConfigs(o.config) ?? CONFIGS;
  const planned = plan(configs.map((config) => ({ config })), o.matrix, o.cases);
  const rows = planned.flatMap((p) => p.cases.map((c) => ({ config: c.config.name, caseId: c.id, key: planKey(c.config.name, c.id) })));
  if (rows.length === 0) throw usage(`no case matches ${o.cases?.map((c) => `"${c}"`).join(', ')}`);
  if (o.json) {
    process.stdout.write(`${JSON.stringify(rows)}\n`);
    return 0;
  }
  const out = [
    `configs: ${configs.map((c) => c.name).join(', ')}`,
    `mappings: ${MAPPINGS.map((m) => m.name).join(', ')}`,
    `pin methods: ${PIN_METHODS.map((p) => `${p.name} (${p.summary})`).join('; ')}`,
    `layout ops: ${LAYOUT_OPS.map((l) => l.name).join(', ')}`,
    `${rows.length} cases (${o.matrix} matrix):`,
    ...rows.map((r) => r.key),
  ];
  process.stdout.write(`${out.join('\n')}\n`);
  return 0;
}

function emit(r: { output: string; exitCode: number; messages: string[] }): number {
  for (const m of r.messages) process.stderr.write(`daxpin: ${m}\n`);
  if (r.output) process.stdout.write(r.output.endsWith('\n') ? r.output : `${r.output}\n`);
  return r.exitCode;
}

export function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command('daxpin')
    .description('What Linux does when pinned pages of a file meet truncate, hole punch, reflink and eviction (fsdax and page cache)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s.startsWith('error:') ? `daxpin: ${s.slice(7)}` : s) });

  const matrixOption = () => new Option('--matrix <name>', 'which cross of the tables').choices(MATRICES).default(RUN_DEFAULTS.matrix);
  const casesOption = () => new Option('--cases <glob>', 'only cases whose id (or config/id) matches; repeatable, comma-separated').argParser(collect);
  const repeatOption = () =>
    new Option('--repeat <n>', 'run each case n times, each on fresh files (reports give rates)').argParser(intOption('--repeat', 1, 1000, 'runs')).default(1);
  const configOption = () => new Option('--config <name>', `config(s): ${CONFIGS.map((c) => c.name).join(', ')}`).argParser(collect);

  program
    .command('run')
    .description('run the case matrix: on a mounted --dir, on --scratch loop filesystems, on a pmem/loop --device, or (with none of these) in qemu guests')
    .option('--dir <dir>', 'an already-mounted filesystem to run in (daxpin works in a subdirectory)')
    .option('--scratch', 'make loop-backed ext4 and XFS and a tmpfs in a private temp dir (page-cache baselines)')
    .option('--device <dev>', 'format and mount each config on this scratch pmem or loop device')
    .addOption(configOption())
    .addOption(casesOption())
    .addOption(matrixOption())
    .addOption(new Option('--hold-ms <n>', 'the longest each pin is held after the op starts').argParser(intOption('--hold-ms', 1, 60_000, 'milliseconds')).default(RUN_DEFAULTS.holdMs))
    .addOption(
      new Option('--hold-mode <mode>', "'evidence': release once the op is seen asleep in its syscall for --dwell-ms (or returned); 'fixed': hold --hold-ms")
        .choices(['evidence', 'fixed'])
        .default(RUN_DEFAULTS.holdMode),
    )
    .addOption(new Option('--dwell-ms <n>', 'how long the op must be seen asleep in its syscall before the pin is released').argParser(intOption('--dwell-ms', 1, 60_000, 'milliseconds')).default(RUN_DEFAULTS.dwellMs))
    .addOption(new Option('--kernel-log-from <where>', 'where the kernel log starts: run-start, or boot (a guest booted for this run)').choices(['boot', 'run-start']).default('run-start').hideHelp())
    .addOption(new Option('--settle-ms <n>', 'how long an op may take to return after the release').argParser(intOption('--settle-ms', 1, 600_000, 'milliseconds')).default(RUN_DEFAULTS.settleMs))
    .addOption(new Option('--canary-kb <n>', 'canary bytes written after the op (KiB)').argParser(intOption('--canary-kb', 0, 1 << 20, 'KiB')).default(RUN_DEFAULTS.canaryKb))
    .addOption(repeatOption())
    .option('--out <file>', 'JSONL output: a new file (never appended to or overwritten)')
    .option('--ktap-console [file]', 'also print KTAP results as cases finish, to /dev/console or this file (/dev/kmsg works)')
    .addOption(new Option('--run-id <id>').hideHelp())
    .addOption(new Option('--skip-file <file>', 'plan keys to leave out (VM runner)').hideHelp())
    .addOption(new Option('--inflight <file>', 'write each case key here before it starts (VM runner)').hideHelp())
    .addOption(new Option('--no-run-record', 'do not write the run header line (VM runner)').hideHelp())
    .addOption(new Option('--written-through', 'the results directory is a host share each write reaches at once (VM runner): no fsync').hideHelp())
    .addOption(new Option('--case-budget-ms <n>', 'per-case time besides hold, settle and signal wait before a worker is abandoned').argParser(intOption('--case-budget-ms', 100, 600_000, 'milliseconds')).default(RUN_DEFAULTS.caseBudgetMs).hideHelp())
    .action(async (o: RunCliOptions) => {
      if (o.dir === undefined && !o.scratch && o.device === undefined) {
        // Options of a native run that the qemu run would silently drop.
        const nativeOnly = [o.out !== undefined && '--out', o.runId !== undefined && '--run-id', o.skipFile !== undefined && '--skip-file', o.inflight !== undefined && '--inflight', o.writtenThrough && '--written-through', !o.runRecord && '--no-run-record', o.caseBudgetMs !== 60_000 && '--case-budget-ms'].filter(Boolean);
        if (nativeOnly.length > 0) {
          throw usage(`${nativeOnly.join(', ')} ${nativeOnly.length === 1 ? 'applies' : 'apply'} to a run with --dir, --scratch or --device; without them daxpin runs in qemu and writes per-kernel files (see daxpin vm --out-dir)`);
        }
        setExit(await vmThenReport({ kernels: [], config: o.config, cases: o.cases, matrix: o.matrix, holdMs: o.holdMs, settleMs: o.settleMs, canaryKb: o.canaryKb, repeat: o.repeat }, 1));
        return;
      }
      setExit(await runCommand(o));
    });

  program
    .command('list')
    .description('print the case matrix')
    .addOption(configOption())
    .addOption(casesOption())
    .addOption(matrixOption())
    .option('--json', 'as JSON [{config, caseId, key}]')
    .action((o) => setExit(listCommand(o)));

  program
    .command('report')
    .description('turn run JSONL into html, md, junit, tap, kcidb or ktap')
    .argument('<runs...>', 'JSONL files from daxpin run / daxpin vm')
    .option('--format <format>', 'html | md | mail | junit | tap | kcidb | ktap (default: from --out, else md)')
    .option('--baseline <run>', 'runs to compare the findings against (mail); repeatable', collect)
    .option('--out <path>', 'write here instead of stdout')
    .option('--expectations <file>', 'expected outcome classes by kernel range, compared with the measurements')
    .action(async (runs: string[], o) => {
      const { reportCommand } = await import('./report/commands');
      setExit(emit(reportCommand({ runs, ...o })));
    });

  program
    .command('compare')
    .description('what changed between two runs; exit 1 when a change makes an invariant fail')
    .argument('<base>')
    .argument('<new>')
    .option('--out <path>')
    .action(async (base: string, next: string, o) => {
      const { compareCommand } = await import('./report/commands');
      setExit(emit(compareCommand({ base, next, out: o.out })));
    });

  /** What `vm` and `nightly` share: the plan and how the guests run. */
  const guestOptions = (cmd: Command) =>
    cmd
      .addOption(configOption())
      .addOption(casesOption())
      .addOption(matrixOption())
      .addOption(new Option('--hold-ms <n>').argParser(intOption('--hold-ms', 1, 60_000, 'milliseconds')).default(RUN_DEFAULTS.holdMs))
      .addOption(new Option('--hold-mode <mode>').choices(['evidence', 'fixed']).default(RUN_DEFAULTS.holdMode))
      .addOption(new Option('--dwell-ms <n>').argParser(intOption('--dwell-ms', 1, 60_000, 'milliseconds')).default(RUN_DEFAULTS.dwellMs))
      .addOption(new Option('--settle-ms <n>').argParser(intOption('--settle-ms', 1, 600_000, 'milliseconds')).default(RUN_DEFAULTS.settleMs))
      .addOption(new Option('--pmem-mb <n>').argParser(intOption('--pmem-mb', 256, 16384, 'MiB')))
      .addOption(new Option('--accel <accel>').choices(['auto', 'tcg', 'kvm']).default('auto'))
      .option('--no-install', 'refuse instead of installing missing host packages')
      .addOption(new Option('--max-boots <n>').argParser(intOption('--max-boots', 1, 100, 'boots')))
      .addOption(new Option('--jobs <n>', "guests at once, one kernel each (default: one per host core, 1 vCPU each)").argParser(intOption('--jobs', 1, 64, 'guests')));

  guestOptions(
    program
      .command('vm')
      .description('boot Debian kernels under qemu with emulated pmem and run the matrix on real fsdax inside')
      .requiredOption('--kernel <spec>', 'version prefix (6.1, 6.12, 7.3), latest, all (newest of every series), a series (6.12.*), .deb path(s) or kernel dir; repeatable', collect)
      .option('--out-dir <dir>', 'where per-kernel JSONL goes')
      .addOption(repeatOption())
      .addOption(new Option('--repeat-boots <n>', 'run the whole plan n times, each kernel in fresh boots (reports give rates)').argParser(intOption('--repeat-boots', 1, 100, 'rounds')).default(1)),
  ).action(async (o) => {
    checkConfigs(o.config);
    setExit(await vmThenReport({ ...o, kernels: o.kernel }, o.repeatBoots));
  });

  guestOptions(
    program
      .command('nightly')
      .description('every kernel series (vm --kernel all), compared with the previous night; writes mail.txt, report.html, kcidb.json; exit 1 on a new finding')
      .requiredOption('--baseline <dir>', "the previous night's --out-dir (an empty directory the first night)")
      .option('--out-dir <dir>', 'where tonight goes (default ./daxpin-nightly-<date>)'),
  ).action(async (o) => {
    checkConfigs(o.config);
    const { nightlyCommand } = await import('./nightly');
    setExit(await nightlyCommand(o));
  });

  program
    .command('bisect')
    .description('binary search over the Debian kernel packages between two versions for where the outcome of the matching cases changes (boots qemu)')
    .requiredOption('--good <version>', 'a release, package version or upstream version (daxpin kernels)')
    .requiredOption('--bad <version>', 'the other end')
    .requiredOption('--cases <glob>', 'the cases to run at each step; repeatable, comma-separated', collect)
    .addOption(configOption())
    .addOption(repeatOption())
    .option('--state <file>', 'the resumable state file (default ./daxpin-bisect.json)')
    .addOption(new Option('--hold-ms <n>').argParser(intOption('--hold-ms', 1, 60_000, 'milliseconds')))
    .addOption(new Option('--settle-ms <n>').argParser(intOption('--settle-ms', 1, 600_000, 'milliseconds')))
    .action(async (o) => {
      checkConfigs(o.config);
      const { bisectCommand } = await import('./findings/bisect-command');
      setExit(await bisectCommand({ good: o.good, bad: o.bad, cases: o.cases, config: o.config, repeat: o.repeat, state: o.state, holdMs: o.holdMs, settleMs: o.settleMs }));
    });

  program
    .command('repro')
    .description('write a standalone reproducer of one case: a C program and the shell lines that prepare its filesystem')
    .argument('<case>', 'pinMethod.layoutOp.mapping (or config/pinMethod.layoutOp.mapping)')
    .addOption(configOption())
    .option('--c', 'the C reproducer (the only kind so far)')
    .option('--out <dir>', 'write repro.c and setup.sh here (default: print both)')
    .addOption(new Option('--hold-ms <n>').argParser(intOption('--hold-ms', 1, 60_000, 'milliseconds')).default(RUN_DEFAULTS.holdMs))
    .addOption(new Option('--settle-ms <n>').argParser(intOption('--settle-ms', 1, 600_000, 'milliseconds')).default(RUN_DEFAULTS.settleMs))
    .addOption(new Option('--canary-kb <n>').argParser(intOption('--canary-kb', 0, 1 << 20, 'KiB')).default(RUN_DEFAULTS.canaryKb))
    .action(async (id: string, o) => {
      const { reproCase, renderReproC, renderReproSetup } = await import('./findings/repro-c');
      const slash = id.indexOf('/');
      const config = slash === -1 ? o.config?.[0] : id.slice(0, slash);
      if (!config) throw usage('give the config: --config NAME or CONFIG/CASE');
      if (!o.c) throw usage('give --c (a C reproducer is the only kind daxpin writes)');
      let c;
      try {
        c = reproCase(config, slash === -1 ? id : id.slice(slash + 1));
      } catch (e) {
        throw usage(reason(e));
      }
      const opts = { holdMs: o.holdMs, settleMs: o.settleMs, canaryKb: o.canaryKb };
      const program = renderReproC(c, opts);
      const setup = renderReproSetup(c, opts);
      if (o.out === undefined) {
        process.stdout.write(`${program}\n/* ---- setup.sh ---- */\n/*\n${setup}*/\n`);
      } else {
        fs.mkdirSync(o.out, { recursive: true });
        fs.writeFileSync(path.join(o.out, 'repro.c'), program);
        fs.writeFileSync(path.join(o.out, 'setup.sh'), setup, { mode: 0o755 });
        say(`wrote ${path.join(o.out, 'repro.c')} and ${path.join(o.out, 'setup.sh')} (run: sh ${path.join(o.out, 'setup.sh')} DEVICE)`);
      }
      setExit(0);
    });

  program
    .command('cleanup')
    .description('remove what a daxpin killed earlier left: loop devices over its images, its mounts, FUSE connections, trace instances (only of dead processes)')
    .option('--dry-run', 'only list what would be removed')
    .action(async (o: { dryRun?: boolean }) => {
      requireRoot('cleanup');
      const left = findLeftovers();
      if (left.length === 0) {
        say('nothing left over by an earlier daxpin');
        return setExit(0);
      }
      if (o.dryRun) {
        for (const l of left) say(`would remove ${l.what} (left by pid ${l.owner})`);
        return setExit(0);
      }
      const failed = await removeLeftovers(left, say);
      for (const f of failed) say(`could not remove ${f}`);
      setExit(failed.length > 0 ? 2 : 0);
    });

  program
    .command('submit')
    .description('post results to a KCIDB REST endpoint (DAXPIN_KCIDB_URL and DAXPIN_KCIDB_TOKEN from the environment)')
    .argument('<files...>', 'a KCIDB JSON file (daxpin report --format kcidb), or run JSONL files')
    .option('--kcidb', 'submit to KCIDB')
    .action(async (files: string[], o: { kcidb?: boolean }) => {
      if (!o.kcidb) throw usage('say where to submit: --kcidb');
      const { submitKcidb } = await import('./submit');
      const r = await submitKcidb(files, { env: process.env, log: (line) => process.stderr.write(`daxpin: ${line}\n`) });
      process.stderr.write(`daxpin: submitted ${r.tests} tests to KCIDB${r.answer ? `: ${r.answer}` : ''}\n`);
      setExit(0);
    });

  program
    .command('lava')
    .description('print a LAVA job definition: boot a kernel on a lab board and run lava/daxpin.yaml on its pmem device')
    .requiredOption('--kernel <url>', 'kernel image (bzImage) URL')
    .requiredOption('--device-type <type>', 'LAVA device type of the board')
    .requiredOption('--pmem <dev>', 'the board\'s pmem device daxpin formats (/dev/pmemN)')
    .requiredOption('--rootfs <url>', 'root filesystem tarball URL (NFS root)')
    .option('--modules <url>', 'kernel modules tarball URL')
    .option('--ramdisk <url>', 'initramfs URL')
    .option('--kernel-args <args>', 'extra kernel command line (e.g. memmap=4G!12G for emulated pmem)')
    .addOption(new Option('--boot-method <method>').choices(['ipxe', 'grub', 'u-boot']).default('ipxe'))
    .option('--repository <url>', "daxpin's git repository as the lab reaches it (default: this checkout's origin)")
    .option('--revision <ref>', 'revision to test (default: this checkout\'s HEAD)')
    .addOption(configOption())
    .addOption(casesOption())
    .addOption(matrixOption())
    .addOption(new Option('--test-minutes <n>', 'time limit of the test action').argParser(intOption('--test-minutes', 1, 24 * 60, 'minutes')).default(120))
    .option('--out <file>', 'write the job here instead of stdout')
    .action(async (o) => {
      checkConfigs(o.config);
      const { lavaJob, thisCheckout, toYaml } = await import('./lava');
      const here = thisCheckout(path.resolve(__dirname, '..', '..'));
      const repository = o.repository ?? here.repository;
      const revision = o.revision ?? here.revision;
      if (!repository) throw usage("give --repository: daxpin's git URL as the lab reaches it (this checkout has no http(s) origin)");
      if (!revision) throw usage('give --revision: the daxpin revision the job tests');
      const yaml = toYaml(lavaJob({ ...o, configs: o.config, repository, revision }));
      if (o.out) fs.writeFileSync(o.out, yaml);
      else process.stdout.write(yaml);
      setExit(0);
    });

  program
    .command('doctor')
    .description('what works on this machine for daxpin and what to do where it does not; exit 0 when the qemu runner can run')
    .option('--no-probe', 'do not boot the short KVM probe guest when no verdict is cached')
    .action(async (o: { probe: boolean }) => {
      const { doctorReport, gatherFacts, renderDoctor } = await import('./doctor');
      const report = doctorReport(await gatherFacts({ probeKvm: o.probe }));
      process.stdout.write(renderDoctor(report));
      setExit(report.qemuRunner ? 0 : 2);
    });

  program
    .command('kernels')
    .description('Debian kernel series and versions in the archive, and those cached here')
    .action(async () => {
      const { formatKernelListing, listKernels } = await import('./vm/kernels');
      process.stdout.write(`${formatKernelListing(await listKernels()).join('\n')}\n`);
      setExit(0);
    });
  return program;
}

export async function main(argv: string[]): Promise<number> {
  let code = 0;
  const program = buildProgram((c) => (code = c));
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    const exitCode = (e as { exitCode?: number }).exitCode;
    // The one place the `daxpin:` prefix is added.
    process.stderr.write(`daxpin: ${reason(e)}\n`);
    return exitCode === 2 || exitCode === undefined ? 2 : exitCode;
  }
}

if (require.main === module) {
  // A reader that goes away (`daxpin report … | head`) ends the output, not with a stack trace.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') return;
      throw err;
    });
  }
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
