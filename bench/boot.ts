// Guest boot to first result: qemu start → the guest's `daxpin run --device /dev/pmem0`
// has written its first case record to the results share. Under TCG always, and under
// KVM when probeAccel says KVM boots this kernel here. Boots qemu: run only with
// `--only boot` or DAXPIN_BENCH_VM=1 (there is one qemu slot on this machine).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CONFIGS } from '../lib/cases/matrix';
import { buildInitramfs } from '../lib/vm/initramfs';
import { resolveKernel } from '../lib/vm/kernels';
import { ensureHostPackages } from '../lib/vm/provision';
import { bootGuest, probeAccel } from '../lib/vm/qemu';
import { BenchResult, CLI, median, requireRoot, round } from './common';

/** Issue 6: boot to first result ≤ 8 s under TCG. */
export const BOOT_TARGET_MS = 8000;
/** The first case a nightly run reaches: the first config and case of the default plan. */
export const BOOT_CONFIG = process.env.DAXPIN_BENCH_BOOT_CONFIG ?? CONFIGS[0].name;
export const BOOT_CASE = process.env.DAXPIN_BENCH_BOOT_CASE ?? 'none.truncate-shrink.pte-shared';

interface BootSample {
  accel: 'tcg' | 'kvm';
  /** qemu start → the guest command starts (kernel, initramfs, 9p root, chroot). */
  commandStartMs: number | null;
  /** qemu start → the first case record is in the results share. */
  firstResultMs: number | null;
  /** The case's own duration as the guest's orchestrator measured it. */
  caseMs: number | null;
  /** qemu start → qemu exit. */
  totalMs: number;
  exitCode: number | null;
  problem: string | null;
}

async function bootOnce(kernel: Awaited<ReturnType<typeof resolveKernel>>, initramfs: string, accel: 'tcg' | 'kvm'): Promise<BootSample> {
  const resultsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'daxpin-bench-boot-'));
  const out = path.join(fs.realpathSync(resultsDir), 'boot.jsonl');
  let firstResultMs: number | null = null;
  let caseMs: number | null = null;
  const t0 = performance.now();
  const watch = setInterval(() => {
    if (firstResultMs !== null || !fs.existsSync(out)) return;
    const line = fs.readFileSync(out, 'utf8').split('\n').find((l) => l.includes('"record":"case"'));
    if (!line) return;
    firstResultMs = performance.now() - t0;
    caseMs = (JSON.parse(line) as { durationMs: number }).durationMs;
  }, 50);
  try {
    const r = await bootGuest({
      kernel,
      initramfs,
      accel,
      guestCommand: [process.execPath, CLI, 'run', '--device', '/dev/pmem0', '--config', BOOT_CONFIG, '--cases', BOOT_CASE, '--out', out],
      resultsDir,
      timeoutMs: 10 * 60_000,
      idleTimeoutMs: 180_000,
    });
    const problem = r.panicked ? 'panic' : r.timedOut ? 'timed out' : r.wedged ? 'wedged' : r.setupError ? `guest set-up: ${r.setupError}` : r.exitCode !== 0 ? `guest command exit ${r.exitCode}: ${r.consoleTail.slice(-3).join(' | ')}` : null;
    return { accel, commandStartMs: r.commandStartMs, firstResultMs, caseMs, totalMs: r.durationMs, exitCode: r.exitCode, problem };
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
        if (accel === 'tcg' && s.firstResultMs !== null) tcgFirst.push(s.firstResultMs);
        rows.push({
          kernel: kernel.release,
          accel,
          commandStartS: s.commandStartMs === null ? null : round(s.commandStartMs / 1000, 2),
          firstResultS: s.firstResultMs === null ? null : round(s.firstResultMs / 1000, 2),
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
      'commandStartS: qemu start → guest command start; firstResultS: qemu start → first case record in the share (node start, mkfs, mount, ballast, worker start and the case included); caseS: the case alone',
      `guest command: daxpin run --device /dev/pmem0 --config ${BOOT_CONFIG} --cases ${BOOT_CASE} (default hold), as the VM runner starts it`,
    ],
  };
}
