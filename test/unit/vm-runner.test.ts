// The host side of `daxpin vm` without qemu: a fake guest writes what the real one
// would (case and config lines in the boot's out file, the in-flight key) and ends
// the way a boot can end (exit, panic, wedge, death before the first case). Checks
// the per-kernel JSONL: lines copied, crashed cases synthesized with the console,
// the skip file of the next boot, notRun, and that lib/report/runfile reads it.

import t, { Test } from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findConfig } from '../../lib/cases/matrix';
import { kernelLogSignature } from '../../lib/engine/kmsg';
import { CaseRecord, ConfigRecord, SCHEMA_VERSION, planKey } from '../../lib/outcome';
import { readRun } from '../../lib/report/runfile';
import { Kernel } from '../../lib/vm/kernels';
import { BootOptions, BootResult } from '../../lib/vm/qemu';
import { consoleKernelLog } from '../../lib/vm/console';
import { hiddenInGuest, keepInGuest } from '../../lib/vm/guest';
import { KernelRunOptions, crashedRecord, runKernel } from '../../lib/vm/kernel-run';
import { formatElapsed } from '../../lib/vm/progress';
import { parseKernelSpecs } from '../../lib/vm/kernels';
import { PlannedCase, planCases } from '../../lib/vm/plan';
import { vmCommand } from '../../lib/vm/runner';
import { LineTailer } from '../../lib/vm/tail';

const KERNEL: Kernel = { release: '9.9.9-test-amd64', vmlinuz: '/nonexistent/vmlinuz', modulesDir: null, origin: 'test' };
const CONFIGS = ['ext4-dax', 'xfs', 'tmpfs'].map((n) => findConfig(n)!);
const GLOBS = ['none.*'];
const PLAN = planCases(CONFIGS, 'smoke', GLOBS);

function arg(argv: string[], name: string): string {
  const i = argv.indexOf(name);
  if (i < 0) throw new Error(`guest command has no ${name}`);
  return argv[i + 1];
}

interface Guest {
  o: BootOptions;
  runId: string;
  skip: Set<string>;
  /** Planned cases not in the skip file, in plan order. */
  todo: PlannedCase[];
  writeCase(p: PlannedCase, extra?: Partial<CaseRecord>): void;
  writeConfig(name: string, extra?: Partial<ConfigRecord>): void;
  writeRaw(text: string): void;
  inflight(text: string): void;
  console(line: string): void;
}

function result(partial: Partial<BootResult>): BootResult {
  return {
    exitCode: null,
    panicked: false,
    oopsed: false,
    timedOut: false,
    wedged: false,
    aborted: false,
    setupError: null,
    accel: 'tcg',
    commandStartMs: 5000,
    durationMs: 10_000,
    consoleTail: [],
    ...partial,
  };
}

/** A boot function whose guest behaviour is `script(guest, bootNumber)`. */
function fakeBoot(script: (g: Guest, boot: number) => Promise<Partial<BootResult>> | Partial<BootResult>) {
  let boots = 0;
  const seen: { skip: Set<string>; argv: string[]; env: Record<string, string> | undefined }[] = [];
  const boot = async (o: BootOptions): Promise<BootResult> => {
    boots++;
    const argv = o.guestCommand;
    const out = arg(argv, '--out');
    const runId = arg(argv, '--run-id');
    const skip = new Set(fs.readFileSync(arg(argv, '--skip-file'), 'utf8').split('\n').filter(Boolean));
    seen.push({ skip, argv, env: o.env });
    const tail: string[] = [];
    const g: Guest = {
      o,
      runId,
      skip,
      todo: PLAN.filter((p) => !skip.has(p.key)),
      writeCase: (p, extra = {}) => {
        const rec = crashedRecord(p.case, {
          runId,
          kernel: KERNEL.release,
          holdMs: 200,
          settleMs: 2000,
          status: 'crashed',
          error: '',
          caseConsole: [],
          consoleTail: [],
          startedAt: new Date(),
          durationMs: 10,
        });
        delete rec.error;
        delete rec.console;
        const done: CaseRecord = {
          ...rec,
          status: 'done',
          daxVerified: p.case.config.dax !== 'off',
          map: { ok: true, errno: null },
          pin: { ok: true, errno: null, held: true, evidence: 'test' },
          op: { ...rec.op, ok: true, started: true, returnedMs: 3 },
          ...extra,
        };
        fs.appendFileSync(out, `${JSON.stringify(done)}\n`);
      },
      writeConfig: (name, extra = {}) => {
        const c = findConfig(name)!;
        const rec: ConfigRecord = {
          record: 'config',
          schema: SCHEMA_VERSION,
          runId,
          kernel: KERNEL.release,
          config: name,
          fsType: c.fsType,
          daxVerified: c.dax !== 'off',
          device: '/dev/pmem0',
          mountOptions: c.dax === 'off' ? '' : 'dax',
          fsck: c.fsType === 'tmpfs' ? null : { tool: 'fsck', ok: true, exitCode: 0, output: '' },
          ...extra,
        };
        fs.appendFileSync(out, `${JSON.stringify(rec)}\n`);
      },
      writeRaw: (text) => fs.appendFileSync(out, text),
      inflight: (text) => fs.writeFileSync(arg(argv, '--inflight'), `${text}\n`),
      console: (line) => {
        tail.push(line);
        o.onConsoleLine?.(line);
      },
    };
    const r = await script(g, boots);
    return result({ consoleTail: tail, ...r });
  };
  return { boot, seen, boots: () => boots };
}

/** Runs the whole plan the way the guest does: config by config, inflight before each case. */
function runAll(g: Guest, stopAt?: string): boolean {
  for (const config of CONFIGS) {
    const cases = g.todo.filter((p) => p.case.config.name === config.name);
    if (cases.length === 0) continue;
    g.inflight(`${config.name}/`);
    for (const p of cases) {
      g.inflight(p.key);
      if (p.key === stopAt) return false;
      g.writeCase(p);
    }
    g.writeConfig(config.name);
  }
  return true;
}

function options(t: Test, boot: KernelRunOptions['boot'], extra: Partial<KernelRunOptions> = {}): KernelRunOptions {
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'daxpin-runner-test-'));
  t.teardown(() => fs.rmSync(outDir, { recursive: true, force: true }));
  const lines: string[] = [];
  return {
    spec: 'test',
    kernel: KERNEL,
    initramfs: '/nonexistent/initramfs',
    accel: 'tcg',
    configs: CONFIGS,
    matrix: 'smoke',
    cases: GLOBS,
    holdMs: 200,
    settleMs: 2000,
    pmemMb: 1024,
    memMb: 2048,
    outDir,
    runId: 'test-run',
    argv: ['vm', '--kernel', 'test'],
    maxBoots: 4,
    env: {},
    idleTimeoutMs: 180_000,
    stallTimeoutMs: 600_000,
    log: (line) => lines.push(line),
    boot,
    node: process.execPath,
    cli: '/nonexistent/cli.js',
    cwd: '/',
    ...extra,
  };
}

const PANIC_CONSOLE = [
  '[   40.100000] sysrq: Trigger a crash',
  '[   40.100100] Kernel panic - not syncing: sysrq triggered crash',
  '[   40.100200] CPU: 1 PID: 812 Comm: node Not tainted 6.1.0-50-amd64 #1  Debian 6.1.176-1',
  '[   40.100300] Call Trace:',
  '[   40.100400]  <TASK>',
];

t.test('the plan is what the guest plans: smoke none.* on three configs', async (t) => {
  t.equal(PLAN.length, 3 * 6, 'two mappings x three ops per config');
  t.same(
    [...new Set(PLAN.map((p) => p.case.config.name))],
    ['ext4-dax', 'xfs', 'tmpfs'],
    'config order kept',
  );
  t.ok(PLAN.every((p) => p.key === planKey(p.case.config.name, p.case.id)));
});

t.test('a clean boot: lines copied in order, one run and one end record, readRun accepts it', async (t) => {
  const fake = fakeBoot((g) => {
    runAll(g);
    g.writeRaw(`${JSON.stringify({ record: 'end', schema: SCHEMA_VERSION, runId: g.runId, finishedAt: '', notRun: [], interrupted: false })}\n`);
    return { exitCode: 0 };
  });
  const o = options(t, fake.boot);
  const r = await runKernel(o);
  t.equal(fake.boots(), 1);
  t.equal(r.error, null);
  t.same(r.notRun, []);
  t.equal(r.recorded.length, PLAN.length);
  const run = readRun(r.file);
  t.same(run.warnings, []);
  t.equal(run.run.runner, 'vm');
  t.equal(run.run.accel, 'tcg');
  t.equal(run.run.kernel, KERNEL.release);
  t.equal(run.run.host, os.hostname(), 'the run record names the host');
  t.same(run.run.planned, PLAN.map((p) => p.key));
  t.equal(run.cases.length, PLAN.length);
  t.same(run.configs.map((c) => c.config), ['ext4-dax', 'xfs', 'tmpfs']);
  t.same(run.end?.notRun, []);
  t.equal(run.end?.interrupted, false);
  t.equal(run.end?.error, undefined, 'a clean run has no error');
  const text = fs.readFileSync(r.file, 'utf8').trim().split('\n');
  t.equal(text.filter((l) => JSON.parse(l).record === 'end').length, 1, "the guest's end record is not copied");
  t.equal(JSON.parse(text[0]).record, 'run');
  const argv = fake.seen[0].argv;
  t.same(argv.slice(2, 4), ['run', '--device']);
  t.ok(argv.includes('--no-run-record'));
  t.same(
    argv.flatMap((a, i) => (a === '--config' ? [argv[i + 1]] : [])),
    ['ext4-dax', 'xfs', 'tmpfs'],
    'every config passed explicitly',
  );
  t.equal(arg(argv, '--cases'), 'none.*');
  t.equal(arg(argv, '--matrix'), 'smoke');
  t.equal(fake.seen[0].skip.size, 0, 'nothing skipped in the first boot');
  t.ok(fs.existsSync(r.boots[0].console), 'console log kept');
});

t.test('a panic mid-run: the case is crashed with the console, the next boot skips it and resumes', async (t) => {
  const victim = PLAN[8];
  const fake = fakeBoot((g, boot) => {
    if (boot === 1) {
      g.console('daxpin-guest: command start');
      t.notOk(runAll(g, victim.key), 'the fake guest stops at the victim');
      // A line the guest was writing when the kernel died.
      g.writeRaw('{"record":"case","schema":1,"runId":"');
      for (const line of PANIC_CONSOLE) g.console(line);
      return { panicked: true, exitCode: null };
    }
    runAll(g);
    return { exitCode: 0 };
  });
  const o = options(t, fake.boot);
  const r = await runKernel(o);
  t.equal(fake.boots(), 2, 'one more boot');
  t.same(fake.seen[1].skip, new Set(PLAN.slice(0, 9).map((p) => p.key)), 'second boot skips what ran and the crashed case');
  t.same(r.crashed, [victim.key]);
  t.same(r.notRun, []);
  t.equal(r.error, null);
  t.same(r.boots.map((b) => b.ended), ['panic', 'exit 0']);
  t.equal(r.boots[0].inflight, victim.key);
  t.ok(r.violations.includes(victim.key), 'a crash is a violation');
  const run = readRun(r.file);
  t.equal(run.cases.length, PLAN.length, 'every planned case has a record');
  const crashed = run.cases.filter((c) => c.status === 'crashed');
  t.equal(crashed.length, 1);
  const c = crashed[0];
  t.equal(planKey(c.config, c.caseId), victim.key);
  t.match(c.console, /Kernel panic - not syncing: sysrq triggered crash/);
  t.match(c.error, /kernel panic/);
  t.equal(c.runId, 'test-run');
  t.equal(c.kernel, KERNEL.release);
  t.equal(c.mapping, victim.case.mapping.name);
  t.equal(c.pinMethod, victim.case.pinMethod.name);
  t.equal(c.layoutOp, victim.case.layoutOp.name);
  t.ok(c.kernelLog.some((l) => l.level === 0 && /Kernel panic/.test(l.text)), 'panic line in kernelLog');
  t.ok(c.kernelLog.every((l) => !/^\[/.test(l.text)), 'timestamps stripped');
  t.same(run.end?.notRun, []);
  // xfs: its config record came from the second boot only.
  t.same(run.configs.map((x) => x.config), ['ext4-dax', 'xfs', 'tmpfs']);
  const lines = fs.readFileSync(r.file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const crashedAt = lines.findIndex((l) => l.status === 'crashed');
  t.same(lines.slice(1, crashedAt).map((l) => l.record === 'config' ? l.config : l.status), [...Array(6).fill('done'), 'ext4-dax', 'done', 'done'], 'first boot lines, then the crash record');
});

t.test('a panic on every boot stops at --max-boots; what never ran is notRun', async (t) => {
  const fake = fakeBoot((g) => {
    const next = g.todo[0];
    g.inflight(next.key);
    for (const line of PANIC_CONSOLE) g.console(line);
    return { panicked: true };
  });
  const r = await runKernel(options(t, fake.boot, { maxBoots: 3 }));
  t.equal(fake.boots(), 3);
  t.same(r.crashed, PLAN.slice(0, 3).map((p) => p.key));
  t.same(r.notRun, PLAN.slice(3).map((p) => p.key));
  t.match(r.error, /gave up after 3 boots/);
  const run = readRun(r.file);
  t.same(run.end?.notRun, r.notRun);
  t.equal(run.end?.error, r.error, 'the end record says why the kernel stopped early');
});

t.test('a guest that dies before its first case stops the kernel with a message', async (t) => {
  const fake = fakeBoot((g) => {
    g.console('[    9.000000] Kernel panic - not syncing: VFS: Unable to mount root fs');
    return { panicked: true, commandStartMs: null };
  });
  const r = await runKernel(options(t, fake.boot));
  t.equal(fake.boots(), 2, 'one fresh boot after a kernel that died in its own boot, no more');
  t.match(r.error, /kernel panic \(boot 2\) before the first case: the guest command never started \(boot 1 died the same way\)/);
  t.equal(r.boots.length, 2);
  t.ok(r.boots.every((b) => b.ended === 'panic' && b.commandStartMs === null), 'both boots recorded as panics before the command');
  t.same(r.notRun, PLAN.map((p) => p.key));
  const run = readRun(r.file);
  t.equal(run.cases.length, 0);
  t.same(run.end?.notRun, PLAN.map((p) => p.key));
  t.equal(run.end?.error, r.error);
});

t.test('a kernel that dies in its boot once is booted again, and the run completes', async (t) => {
  const fake = fakeBoot((g, n) => {
    if (n === 1) {
      g.console('[    1.272279] Oops: int3: 0000 [#1] SMP NOPTI');
      g.console('[    1.274449] Kernel panic - not syncing: Fatal exception in interrupt');
      return { panicked: true, commandStartMs: null };
    }
    runAll(g);
    return {};
  });
  const r = await runKernel(options(t, fake.boot));
  t.equal(fake.boots(), 2);
  t.equal(r.error, null);
  t.same(r.notRun, []);
  t.equal(r.boots[0].ended, 'panic', 'the failed boot stays on record');
  t.ok(fs.existsSync(r.boots[0].console), 'with its console');
  t.equal(readRun(r.file).cases.length, PLAN.length);
});

t.test("the guest's daxpin refusing (exit 2) before any case is an error with its message", async (t) => {
  const fake = fakeBoot((g) => {
    g.console('daxpin: /dev/pmem0 is mounted; refusing');
    return { exitCode: 2 };
  });
  const r = await runKernel(options(t, fake.boot));
  t.equal(fake.boots(), 1);
  t.match(r.error, /exited with status 2: \/dev\/pmem0 is mounted; refusing, before its first case/);
});

t.test('a guest command that exits 0/1 without a single record is an error, not a clean run', async (t) => {
  const fake = fakeBoot((g) => {
    for (const line of [
      'daxpin-guest: command start',
      "Error: Cannot find module '/somewhere/dist/lib/cli.js'",
      '    at Module._resolveFilename (node:internal/modules/cjs/loader:1207:15)',
      'Node.js v20.20.2',
      'daxpin-guest: command exit 1',
      '[    7.338482] reboot: Power down',
    ])
      g.console(line);
    return { exitCode: 1 };
  });
  const r = await runKernel(options(t, fake.boot));
  t.equal(fake.boots(), 1);
  t.match(r.error, /exited with status 1 without running a case: Error: Cannot find module/);
  t.same(r.notRun, PLAN.map((p) => p.key));
});

t.test('a panic while a config is set up: config record with the error, its cases skipped, the rest runs', async (t) => {
  const fake = fakeBoot((g, boot) => {
    if (boot === 1) {
      for (const p of g.todo.filter((x) => x.case.config.name === 'ext4-dax')) g.writeCase(p);
      g.writeConfig('ext4-dax');
      g.inflight('xfs/');
      g.console('[   30.000000] BUG: kernel NULL pointer dereference, address: 0000000000000008');
      g.console('[   30.000100] Kernel panic - not syncing: Fatal exception');
      return { panicked: true };
    }
    runAll(g);
    return { exitCode: 0 };
  });
  const r = await runKernel(options(t, fake.boot));
  t.equal(fake.boots(), 2);
  const xfsKeys = PLAN.filter((p) => p.case.config.name === 'xfs').map((p) => p.key);
  t.ok(xfsKeys.every((k) => fake.seen[1].skip.has(k)), 'xfs cases skipped in the next boot');
  t.same(r.notRun, xfsKeys);
  t.equal(r.error, null);
  const run = readRun(r.file);
  const xfs = run.configs.find((c) => c.config === 'xfs');
  t.match(xfs?.error, /kernel panic \(boot 1\) while the guest set the config up; last console line: .*Fatal exception/);
  t.equal(run.cases.filter((c) => c.config === 'tmpfs').length, 6, 'tmpfs ran in boot 2');
});

t.test('a crash after a case finished (inflight already recorded) resumes without a crashed record', async (t) => {
  const fake = fakeBoot((g, boot) => {
    if (boot === 1) {
      const first = g.todo.slice(0, 2);
      for (const p of first) {
        g.inflight(p.key);
        g.writeCase(p);
      }
      return { panicked: true };
    }
    runAll(g);
    return { exitCode: 0 };
  });
  const r = await runKernel(options(t, fake.boot));
  t.equal(fake.boots(), 2);
  t.same(r.crashed, []);
  t.same(r.notRun, []);
  t.equal(readRun(r.file).cases.length, PLAN.length);
});

t.test('a wedged guest (no progress) is stopped by the stall timer and its case recorded', async (t) => {
  const fake = fakeBoot(async (g, boot) => {
    if (boot === 1) {
      g.writeCase(g.todo[0]);
      g.inflight(g.todo[1].key);
      // The kernel keeps printing but nothing moves: only the stall timer ends this.
      await new Promise<void>((resolve) => g.o.signal?.addEventListener('abort', () => resolve()));
      return { aborted: true };
    }
    runAll(g);
    return { exitCode: 0 };
  });
  const r = await runKernel(options(t, fake.boot, { stallTimeoutMs: 1500 }));
  t.same(r.boots.map((b) => b.ended), ['stalled', 'exit 0']);
  t.same(r.crashed, [PLAN[1].key]);
  const c = readRun(r.file).cases.find((x) => x.status === 'crashed');
  t.match(c?.error, /guest stalled: no new result for 2 s/);
});

t.test("the guest's daxpin dying mid-case makes that case an error, not a crash", async (t) => {
  const fake = fakeBoot((g, boot) => {
    if (boot === 1) {
      g.writeCase(g.todo[0]);
      g.inflight(g.todo[1].key);
      g.console('daxpin: worker protocol broke');
      return { exitCode: 134 };
    }
    runAll(g);
    return { exitCode: 0 };
  });
  const r = await runKernel(options(t, fake.boot));
  t.same(r.crashed, []);
  const run = readRun(r.file);
  const e = run.cases.find((x) => x.status === 'error');
  t.equal(planKey(e!.config, e!.caseId), PLAN[1].key);
  t.match(e!.error, /exited with status 134: worker protocol broke during this case/);
  t.same(run.end?.notRun, []);
});

t.test('the guest env carries the panic hook', async (t) => {
  const fake = fakeBoot((g) => {
    runAll(g);
    return { exitCode: 0 };
  });
  await runKernel(options(t, fake.boot, { env: { DAXPIN_TEST_PANIC_AT: 'xfs/*' } }));
  t.equal(fake.seen[0].env?.DAXPIN_TEST_PANIC_AT, 'xfs/*');
});

t.test('kernel log lines from the console', async (t) => {
  const lines = consoleKernelLog([
    'daxpin: config ext4-dax: DAX verified',
    '[   12.5] WARNING: CPU: 0 PID: 77 at fs/dax.c:123 dax_layout_busy_page+0x1a/0x40',
    '\x1b[0m[   13.000001] nd_pmem namespace0.0: unable to guarantee persistence of writes',
    '[   13.5] XFS (pmem0): DAX enabled. Warning: EXPERIMENTAL, use at your own risk',
    '[   14.000000] BUG: unable to handle page fault for address: ffff888012345678',
    '[   15.000000] Kernel panic - not syncing: Fatal exception',
  ]);
  t.same(
    lines.map((l) => [l.level, l.text]),
    [
      [4, 'WARNING: CPU: 0 PID: 77 at fs/dax.c:123 dax_layout_busy_page+0x1a/0x40'],
      [1, 'BUG: unable to handle page fault for address: ffff888012345678'],
      [0, 'Kernel panic - not syncing: Fatal exception'],
    ],
  );
  t.equal(lines[0].signature, kernelLogSignature(lines[0].text), 'signature as lib/engine/kmsg makes it');
  t.notMatch(lines[0].signature, /PID: 77|\+0x1a/, 'pids and offsets normalised');
});

t.test('line tailer keeps a torn last line back', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'daxpin-tail-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'f');
  const tail = new LineTailer(file);
  t.same(tail.poll(), [], 'no file yet');
  fs.writeFileSync(file, 'a\nb');
  t.same(tail.poll(), ['a']);
  t.equal(tail.torn, 'b');
  fs.appendFileSync(file, 'c\n\nd\n');
  t.same(tail.poll(), ['bc', 'd']);
  t.equal(tail.torn, '');
});

t.test('paths the guest cannot see', async (t) => {
  t.match(hiddenInGuest('/tmp/snap/dist/lib/cli.js'), /under \/tmp, which the guest mounts afresh/);
  t.match(hiddenInGuest('/run/x'), /under \/run/);
  t.equal(hiddenInGuest('/tmpfoo/cli.js'), null);
  t.equal(hiddenInGuest('/work/main/dist/lib/cli.js'), null);
  t.equal(keepInGuest('/tmp/checkout'), '/tmp/checkout', 'a checkout under /tmp is bound into the guest');
  t.equal(keepInGuest('/run/user/0/daxpin'), '/run/user/0/daxpin');
  t.equal(keepInGuest('/work/main'), null, 'visible anyway');
  t.equal(keepInGuest('/dev/shm/daxpin'), null, 'not under a directory the guest can be given back');
});

t.test('kernel specs are checked before anything is fetched', async (t) => {
  t.same(parseKernelSpecs(['6.1', 'latest', '6.1', '6.1.0-50-amd64', '7.3.4+deb13-amd64']), [
    { spec: '6.1', kind: 'version' },
    { spec: 'latest', kind: 'latest' },
    { spec: '6.1.0-50-amd64', kind: 'release' },
    { spec: '7.3.4+deb13-amd64', kind: 'release' },
  ]);
  t.same(parseKernelSpecs([os.tmpdir()]), [{ spec: os.tmpdir(), kind: 'dir' }]);
  t.throws(() => parseKernelSpecs(['newest']), /"newest" is not a kernel spec/);
  t.throws(() => parseKernelSpecs(['/nonexistent/linux.deb']), /no such file/);
  t.throws(() => parseKernelSpecs(['/nonexistent/tree']), /no such directory/);
  t.equal(formatElapsed(61_000), '1:01');
  t.equal(formatElapsed(3_723_000), '1:02:03');
});

t.test('vmCommand refuses bad input with one line and exit 2', async (t) => {
  const lines: string[] = [];
  const log = (l: string) => lines.push(l);
  t.equal((await vmCommand({ kernels: ['nope'], log })).exitCode, 2);
  t.match(lines.pop(), /^daxpin: "nope" is not a kernel spec/);
  t.equal((await vmCommand({ kernels: ['6.1'], config: ['zfs-dax'], log })).exitCode, 2);
  t.match(lines.pop(), /^daxpin: unknown config "zfs-dax"/);
  t.equal((await vmCommand({ kernels: ['6.1'], cases: ['no-such-case*'], log })).exitCode, 2);
  t.match(lines.pop(), /^daxpin: no case matches "no-such-case\*"/);
  t.equal((await vmCommand({ kernels: ['6.1'], maxBoots: 0, log })).exitCode, 2);
  t.match(lines.pop(), /--max-boots/);
});
