// Whether a kernel boots under KVM here: a short probe boot, its verdict kept per
// kernel release for the session and for a day in the cache.

import { constants as fsConstants, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { cacheRoot, ensureDir } from './cache';
import { GUEST_MARKERS } from './initramfs';
import { Kernel } from './kernels';
import { bootImage, firmware, qemuArgs, runQemu } from './qemu';

export type Accel = 'auto' | 'tcg' | 'kvm';

const PROBE_TIMEOUT_MS = 20_000;
const ACCEL_VERDICT_MAX_AGE_MS = 24 * 3600 * 1000;

async function kvmUsable(): Promise<boolean> {
  try {
    await fs.access('/dev/kvm', fsConstants.R_OK | fsConstants.W_OK);
    return true;
  } catch {
    return false;
  }
}

type AccelVerdicts = Record<string, { accel: 'tcg' | 'kvm'; at: number }>;
const sessionVerdicts = new Map<string, 'tcg' | 'kvm'>();

function verdictFile(): string {
  return path.join(cacheRoot(), 'accel.json');
}

async function readVerdicts(): Promise<AccelVerdicts> {
  try {
    return JSON.parse(await fs.readFile(verdictFile(), 'utf8')) as AccelVerdicts;
  } catch {
    return {};
  }
}

/**
 * Whether this kernel boots under KVM here. Boots it with KVM and `daxpin.probe` (the
 * init prints a marker and powers off) under a short timeout; on this project's
 * machines KVM hangs right after the kernel decompressor, so anything short of the
 * marker means TCG. The verdict is kept per kernel release for the session and for
 * a day in the cache.
 */
export async function probeAccel(kernel: Kernel, initramfs: string): Promise<'tcg' | 'kvm'> {
  const known = sessionVerdicts.get(kernel.release);
  if (known) return known;
  const verdicts = await readVerdicts();
  const cached = verdicts[kernel.release];
  if (cached && Date.now() - cached.at < ACCEL_VERDICT_MAX_AGE_MS) {
    sessionVerdicts.set(kernel.release, cached.accel);
    return cached.accel;
  }
  let accel: 'tcg' | 'kvm' = 'tcg';
  if (await kvmUsable()) {
    let sawMarker = false;
    const args = qemuArgs({ kernel, image: await bootImage(kernel), bios: await firmware(), initramfs, memMb: 512, pmemMb: 64, cpus: 1, accel: 'kvm', resultsDir: null, append: ['daxpin.probe'] });
    await runQemu({
      args,
      timeoutMs: PROBE_TIMEOUT_MS,
      idleTimeoutMs: null,
      progress: async () => '',
      onLine: (line) => {
        if (line.includes(GUEST_MARKERS.probe)) sawMarker = true;
      },
    });
    if (sawMarker) accel = 'kvm';
  }
  sessionVerdicts.set(kernel.release, accel);
  await ensureDir(cacheRoot());
  verdicts[kernel.release] = { accel, at: Date.now() };
  await fs.writeFile(verdictFile(), JSON.stringify(verdicts, null, 2) + '\n');
  return accel;
}
