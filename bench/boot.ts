// Guest boot to first result: qemu start → the guest's `daxpin run --device /dev/pmem0`
// has written its first case record to the results share. Under TCG always, and under
// KVM when probeAccel says KVM boots this kernel here. Boots qemu (one guest
// at a time); left out with DAXPIN_BENCH_VM=0.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CONFIGS } from '../lib/cases/matrix';
import { buildInitramfs, GUEST_MARKERS } from '../lib/vm/initramfs';
import { resolveKernel } from '../lib/vm/kernels';
import { ensureHostPackages } from '../lib/vm/provision';
import { probeAccel } from '../lib/vm/accel';
import { bootGuest } from '../lib/vm/qemu';
import { GUEST_DEVICE, guestPrefetch } from '../lib/vm/guest';
import { BenchResult, CLI, ROOT, median, requireRoot, round } from './common';
import { RUN_DEFAULTS, deviceRunArgv } from '../lib/run-options';
import { newRunId } from '../lib/engine/run';

/** Issue 6: boot to first result ≤ 8 s under TCG. */
export const BOOT_TARGET_MS = 8000;
/** The first case a nightly run reaches: the first config and case of the default plan. */
export const BOOT_CONFIG = process.env.DAXPIN_BENCH_BOOT_CONFIG ?? CONFIGS[0].name;
export const BOOT_CASE = process.env.DAXPIN_BENCH_BOOT_CASE ?? 'none.truncate-shrink.pte-shared';

/** Seconds from qemu start to each phase of a boot; null when the boot never got there. */
interface BootPhases {
  /** The kernel's clock starts (its first timestamped console line, minus that timestamp). */
  kernel: number | null;
  /** The initramfs's /init runs (`daxpin-guest: at <uptime> init`). */
  init: number | null;
  /** Host root, results share and binds mounted (`… root`). */
  root: number | null;
  /** Every boot-time module loaded (`… modules`). */
  modules: number | null;
  /** The guest command starts. */
  command: number | null;
  /** The first config is formatted, mounted and checked (`daxpin: config …: DAX …`). */
  config: number | null;
  /** The first case record is in the results share. */
  firstResult: number | null;
}

interface BootSample extends BootPhases {
  accel: 'tcg' | 'kvm';
  /** The case's own duration as the guest's orchestrator measured it (worker and FUSE peer start included). */
  caseMs: number | null;
  /** qemu start → qemu exit. */
  totalMs: number;
  exitCode: number | null;
  problem: string | null;
}

const KERNEL_STAMP = /^\[\s*(\d+\.\d+)\]/;
const GUEST_AT = new RegExp(`^${GUEST_MARKERS.at}[0-9.]+ (\\w+)`);

async function bootOnce(kernel: Awaited<ReturnType<typeof resolveKernel>>, initramfs: string, accel: 'tcg' | 'kvm'): Promise<BootSample> {
  const resultsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'daxpin-bench-boot-'));
  const out = path.join(fs.realpathSync(resultsDir), 'boot.jsonl');
  const skipFile = path.join(path.dirname(out), 'skip');
  fs.writeFileSync(skipFile, '');
  const phases: BootPhases = { kernel: null, init: null, root: null, modules: null, command: null, config: null, firstResult: null };
  let caseMs: number | null = null;
  const t0 = performance.now();
  const since = () => (performance.now() - t0) / 1000;
  const watch = setInterval(() => {
    if (phases.firstResult !== null || !fs.existsSync(out)) return;
    const line = fs.readFileSync(out, 'utf8').split('\n').find((l) => l.includes('"record":"case"'));
    if (!line) return;
    phases.firstResult = since();
    caseMs = (JSON.parse(line) as { durationMs: number }).durationMs;
  }, 20);
  try {
    // The guest command as the VM runner starts it: this node and daxpin, from the host's
    // root, with the same page cache warm-up list.
    const r = await bootGuest({
      kernel,
      initramfs,
      accel,
      guestCommand: [
        process.execPath,
        CLI,
        ...deviceRunArgv({
          ...RUN_DEFAULTS,
          device: GUEST_DEVICE,
          out,
          runId: newRunId(),
          skipFile,
          inflight: path.join(path.dirname(out), 'inflight'),
          configs: [BOOT_CONFIG],
          cases: [BOOT_CASE],
        }),
      ],
      prefetch: guestPrefetch(process.execPath, ROOT),
      cwd: ROOT,
      resultsDir,
      timeoutMs: 10 * 60_000,
      idleTimeoutMs: 180_000,
      onConsoleLine: (line) => {
        const at = since();
        const stamp = KERNEL_STAMP.exec(line);
        if (phases.kernel === null && stamp) phases.kernel = Math.max(0, at - Number(stamp[1]));
        const phase = GUEST_AT.exec(line)?.[1];
        if (phase === 'init' || phase === 'root' || phase === 'modules') phases[phase] ??= at;
        if (line.startsWith(GUEST_MARKERS.commandStart)) phases.command ??= at;
        if (/^daxpin: config \S+: (DAX|not set up)/.test(line)) phases.config ??= at;
      },
    });
    const problem = r.panicked ? 'panic' : r.timedOut ? 'timed out' : r.wedged ? 'wedged' : r.setupError ? `guest set-up: ${r.setupError}` : r.exitCode !== 0 ? `guest command exit ${r.exitCode}: ${r.consoleTail.slice(-3).join(' | ')}` : null;
    return { accel, ...phases, caseMs, totalMs: r.durationMs, exitCode: r.exitCode, problem };
  } finally {
    clearInterval(watch);
    fs.rmSync(resultsDir, { recursive: true, force: true });
  }
}

export async function boot(kernelSpecs: string[], reps: number): Promise<BenchResult> {
  requireRoot('boot');
  await ensureHostPackages({ noInstall: true });
  const rows: BenchResult['rows'] = [];
  const tcgFirst: number[] = [];
  for (const spec of kernelSpecs) {
    const kernel = await resolveKernel(spec, { log: (l) => process.stderr.write(`${l}\n`) });
    const initramfs = await buildInitramfs(kernel);
    const accels: Array<'tcg' | 'kvm'> = ['tcg'];
    if ((await probeAccel(kernel, initramfs)) === 'kvm') accels.push('kvm');
    for (const accel of accels) {
      for (let i = 0; i < reps; i++) {
        process.stderr.write(`bench boot: ${kernel.release} ${accel} #${i + 1} ...\n`);
        const s = await bootOnce(kernel, initramfs, accel);
        if (accel === 'tcg' && s.firstResult !== null) tcgFirst.push(s.firstResult * 1000);
        const r2 = (x: number | null) => (x === null ? null : round(x, 2));
        rows.push({
          kernel: kernel.release,
          accel,
          kernelS: r2(s.kernel),
          initS: r2(s.init),
          rootS: r2(s.root),
          modulesS: r2(s.modules),
          commandS: r2(s.command),
          configS: r2(s.config),
          firstResultS: r2(s.firstResult),
          caseS: s.caseMs === null ? null : round(s.caseMs / 1000, 2),
          totalS: round(s.totalMs / 1000, 2),
          problem: s.problem ?? '',
        });
      }
    }
  }
  const worst = tcgFirst.length ? Math.max(...tcgFirst) : NaN;
  return {
    bench: 'boot',
    summary: { config: BOOT_CONFIG, case: BOOT_CASE, tcgFirstResultMedianS: round(median(tcgFirst) / 1000, 2), tcgFirstResultWorstS: round(worst / 1000, 2) },
    rows,
    targets: [{ what: 'boot to first result under TCG', target: `<= ${BOOT_TARGET_MS / 1000} s`, measured: Number.isFinite(worst) ? `${round(worst / 1000, 2)} s (worst)` : 'no result', met: Number.isFinite(worst) ? worst <= BOOT_TARGET_MS : false }],
    notes: [
      'seconds from qemu start: kernelS the kernel clock starts (firmware, kernel load), initS /init runs, rootS 9p root and binds mounted, modulesS boot-time modules loaded, commandS guest command starts, configS first config formatted/mounted/DAX-checked (node start and CLI load included), firstResultS first case record in the share; caseS: the case alone (worker and FUSE peer start included)',
      `guest command: daxpin run --device /dev/pmem0 --config ${BOOT_CONFIG} --cases ${BOOT_CASE} with the VM runner's arguments (deviceRunArgv: the host writes the run record, the guest a boot record)`,
    ],
  };
}
