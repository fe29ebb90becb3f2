#!/usr/bin/env node
// daxpin command line. Exit codes: 0 ran, 1 an invariant was violated,
// 2 usage or environment error (always with one clear line on stderr).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { CONFIGS, Config, LAYOUT_OPS, MAPPINGS, MatrixName, PIN_METHODS, findConfig } from './cases/matrix';
import { planKey } from './outcome';
import { ConfigSource, RunSummary, newRunId, plan, runMatrix, Progress } from './engine/run';
import { JsonlWriter } from './engine/jsonl';
import { CaseTiming } from './engine/orchestrator';
import { prepareExistingDir, prepareOnDevice, prepareScratch } from './configs/setup';
import { checkScratchDevice } from './configs/safety';
import { writeFileSynced } from './host/durable';
import { register } from './host/lifecycle';
import { readMountinfo } from './host/mountinfo';
import { invariantViolations, configViolations, outcomeClass } from './verdict';
import { RUN_DEFAULTS } from './run-options';
// report/commands (every report format: 15 modules) is imported by `report` and `compare`
// only: `run` in a TCG guest would pay 0.3 s to load it.

export class UsageError extends Error {
  readonly exitCode = 2;
}

const MATRICES: MatrixName[] = ['default', 'full', 'smoke'];
const SCRATCH_CONFIGS = ['ext4', 'xfs', 'tmpfs'];

function intOption(name: string, min: number, max: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value)) throw new UsageError(`${name} must be a whole number of milliseconds, got "${value}"`);
    const n = Number(value);
    if (n < min || n > max) throw new UsageError(`${name} must be between ${min} and ${max}, got ${n}`);
    return n;
  };
}

const collect = (value: string, previous: string[] = []) => [...previous, ...value.split(',').filter(Boolean)];

function checkConfigs(names: string[] | undefined): Config[] | undefined {
  if (!names) return undefined;
  return names.map((n) => {
    const c = findConfig(n);
    if (!c) throw new UsageError(`unknown config "${n}"; known: ${CONFIGS.map((x) => x.name).join(', ')}`);
    return c;
  });
}

function requireRoot(): void {
  if (process.getuid && process.getuid() !== 0) throw new UsageError('daxpin run needs root (it mounts filesystems, pins pages and reads /dev/kmsg)');
}

interface RunCliOptions {
  dir?: string;
  scratch?: boolean;
  device?: string;
  config?: string[];
  cases?: string[];
  matrix: MatrixName;
  holdMs: number;
  settleMs: number;
  out?: string;
  runId?: string;
  skipFile?: string;
  inflight?: string;
  runRecord: boolean;
  canaryKb: number;
  caseBudgetMs: number;
}

async function runCommand(o: RunCliOptions): Promise<number> {
  const modes = [o.dir !== undefined, !!o.scratch, o.device !== undefined].filter(Boolean).length;
  if (modes > 1) throw new UsageError('give only one of --dir, --scratch and --device');
  const configs = checkConfigs(o.config);
  requireRoot();
  // Loop files, mount points and FUSE mounts live here. Registered before anything is
  // made in it, so on Ctrl-C it is removed last; on a usage error it is removed too.
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'daxpin-'));
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
  let sources: ConfigSource[];
  if (o.dir !== undefined) {
    if (configs && configs.length > 1) throw new UsageError('--dir runs one config; give at most one --config');
    const prepared = await prepareExistingDir(o.dir, configs?.[0]?.name);
    sources = [{ config: prepared.config, prepare: async () => prepared }];
  } else if (o.scratch) {
    const chosen = configs ?? SCRATCH_CONFIGS.map((n) => findConfig(n)!);
    sources = chosen.map((config) => ({ config, prepare: () => prepareScratch(config, { workDir }) }));
  } else {
    const device = await checkScratchDevice(o.device!);
    sources = (configs ?? CONFIGS).map((config) => ({ config, prepare: () => prepareOnDevice(config, device, { workDir }) }));
  }
  const planned = plan(sources, o.matrix, o.cases);
  if (planned.every((p) => p.cases.length === 0)) {
    throw new UsageError(`no case matches ${o.cases?.map((c) => `"${c}"`).join(', ') ?? 'the plan'}; see daxpin list`);
  }
  const skip = o.skipFile && fs.existsSync(o.skipFile) ? new Set(fs.readFileSync(o.skipFile, 'utf8').split('\n').filter(Boolean)) : undefined;
  const runId = o.runId ?? newRunId();
  const outPath = o.out ?? `daxpin-${os.release()}-${runId}.jsonl`;
  let out: JsonlWriter;
  try {
    out = new JsonlWriter(outPath);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'its directory does not exist' : code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' || code === 'EROFS' ? `not writable (${code})` : (code ?? String(e));
    throw new UsageError(`cannot write --out ${outPath}: ${why}`);
  }
  let stop = false;
  const onSignal = () => {
    // Finish the case in progress, write the end record, tear down; host/lifecycle.ts
    // handles a second signal and the mounts.
    stop = true;
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const timing: CaseTiming = { holdMs: o.holdMs, settleMs: o.settleMs, signalWaitMs: RUN_DEFAULTS.signalWaitMs, caseBudgetMs: o.caseBudgetMs, canaryBytes: o.canaryKb * 1024 };
  const tty = process.stderr.isTTY;
  const summary = await runMatrix({
    sources,
    matrix: o.matrix,
    globs: o.cases,
    timing,
    out,
    workDir,
    runner: 'native',
    argv: process.argv.slice(2),
    runId,
    skip,
    writeRunRecord: o.runRecord,
    shouldStop: () => stop,
    onCaseStart: (key) => {
      writeInflight(o.inflight, key);
      panicIfAsked(key);
    },
    // `<config>/`: a crash during mkfs or mount is the config's, not the last case's.
    onConfigStart: (config) => writeInflight(o.inflight, `${config}/`),
    onProgress: (p) => printProgress(p, tty),
  });
  out.close();
  printSummary(summary, outPath);
  const violations = summary.cases.filter((c) => invariantViolations(c).length > 0).length + summary.configs.filter((c) => configViolations(c).length > 0).length;
  if (summary.interrupted) return 130;
  return violations > 0 ? 1 : 0;
}

/** The VM runner's in-flight marker: what is running now, on the results share. */
function writeInflight(file: string | undefined, what: string): void {
  if (file) writeFileSynced(file, `${what}\n`);
}

/**
 * Test hook for the VM runner's crash handling: DAXPIN_TEST_PANIC_AT=<glob> makes
 * the guest kernel panic (sysrq c) right before the matching case. Only inside a
 * daxpin guest (DAXPIN_RESULTS is set there), never on a host.
 */
function panicIfAsked(key: string): void {
  const glob = process.env.DAXPIN_TEST_PANIC_AT;
  if (!glob || !process.env.DAXPIN_RESULTS) return;
  const re = new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
  if (re.test(key)) fs.writeFileSync('/proc/sysrq-trigger', 'c');
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
  if (s.notRun.length) lines.push(`  not run: ${s.notRun.length} cases`);
  process.stderr.write(`${lines.join('\n')}\n`);
}

function listCommand(o: { config?: string[]; cases?: string[]; matrix: MatrixName; json?: boolean }): number {
  const configs = checkConfigs(o.config) ?? CONFIGS;
  const planned = plan(configs.map((config) => ({ config, prepare: () => Promise.reject(new Error('list only')) })), o.matrix, o.cases);
  const rows = planned.flatMap((p) => p.cases.map((c) => ({ config: c.config.name, caseId: c.id, key: planKey(c.config.name, c.id) })));
  if (rows.length === 0) throw new UsageError(`no case matches ${o.cases?.map((c) => `"${c}"`).join(', ')}`);
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
    .addOption(new Option('--hold-ms <n>', 'how long each pin is held after the op starts').argParser(intOption('--hold-ms', 1, 60_000)).default(RUN_DEFAULTS.holdMs))
    .addOption(new Option('--settle-ms <n>', 'how long an op may take to return after the release').argParser(intOption('--settle-ms', 1, 600_000)).default(RUN_DEFAULTS.settleMs))
    .addOption(new Option('--canary-kb <n>', 'canary bytes written after the op (KiB)').argParser(intOption('--canary-kb', 0, 1 << 20)).default(RUN_DEFAULTS.canaryKb))
    .option('--out <file>', 'JSONL output (appended)')
    .addOption(new Option('--run-id <id>').hideHelp())
    .addOption(new Option('--skip-file <file>', 'plan keys to leave out (VM runner)').hideHelp())
    .addOption(new Option('--inflight <file>', 'write each case key here before it starts (VM runner)').hideHelp())
    .addOption(new Option('--no-run-record', 'do not write the run header line (VM runner)').hideHelp())
    .addOption(new Option('--case-budget-ms <n>', 'per-case time besides hold, settle and signal wait before a worker is abandoned').argParser(intOption('--case-budget-ms', 100, 600_000)).default(RUN_DEFAULTS.caseBudgetMs).hideHelp())
    .action(async (o: RunCliOptions) => {
      if (o.dir === undefined && !o.scratch && o.device === undefined) {
        const { vmCommand } = await import('./vm/runner');
        setExit((await vmCommand({ kernels: [], config: o.config, cases: o.cases, matrix: o.matrix, holdMs: o.holdMs, settleMs: o.settleMs, canaryKb: o.canaryKb })).exitCode);
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
    .description('turn run JSONL into html, md, junit, tap or kcidb')
    .argument('<runs...>', 'JSONL files from daxpin run / daxpin vm')
    .option('--format <format>', 'html | md | junit | tap | kcidb (default: from --out, else md)')
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
      .addOption(new Option('--hold-ms <n>').argParser(intOption('--hold-ms', 1, 60_000)).default(RUN_DEFAULTS.holdMs))
      .addOption(new Option('--settle-ms <n>').argParser(intOption('--settle-ms', 1, 600_000)).default(RUN_DEFAULTS.settleMs))
      .addOption(new Option('--pmem-mb <n>').argParser(intOption('--pmem-mb', 256, 16384)))
      .addOption(new Option('--accel <accel>').choices(['auto', 'tcg', 'kvm']).default('auto'))
      .option('--no-install', 'refuse instead of installing missing host packages')
      .addOption(new Option('--max-boots <n>').argParser(intOption('--max-boots', 1, 100)))
      .addOption(new Option('--jobs <n>', "guests at once, one kernel each (default: one per host core, 1 vCPU each)").argParser(intOption('--jobs', 1, 64)));

  guestOptions(
    program
      .command('vm')
      .description('boot Debian kernels under qemu with emulated pmem and run the matrix on real fsdax inside')
      .requiredOption('--kernel <spec>', 'version prefix (6.1, 6.12, 7.3), latest, all (newest of every series), a series (6.12.*), .deb path(s) or kernel dir; repeatable', collect)
      .option('--out-dir <dir>', 'where per-kernel JSONL goes'),
  ).action(async (o) => {
    checkConfigs(o.config);
    const { vmCommand } = await import('./vm/runner');
    setExit((await vmCommand({ ...o, kernels: o.kernel })).exitCode);
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
    const message = e instanceof Error ? e.message : String(e);
    process.stderr.write(`${message.startsWith('daxpin:') ? message : `daxpin: ${message}`}\n`);
    return exitCode === 2 || exitCode === undefined ? 2 : exitCode;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
