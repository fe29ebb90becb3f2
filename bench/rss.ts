// Peak RSS (VmHWM) of the orchestrator (the `daxpin run` process), its worker and the
// worker's FUSE peer over a whole default-matrix run, sampled from /proc by
// bench/cli-run.ts. Reuses the matrix benchmark's runs when they were made.
import { BenchResult, round } from './common';
import { ProcessMemory } from './cli-run';
import { NativeConfigRun, matrixNative } from './matrix';

export async function rss(runs: NativeConfigRun[] | null): Promise<BenchResult> {
  const measured = runs ?? (await matrixNative(['tmpfs'])).runs;
  const rows = measured.map(({ config, full }) => {
    const peak = (role: ProcessMemory['role']) => {
      const ps = full.run.memory.filter((m) => m.role === role);
      return ps.length ? round(Math.max(...ps.map((m) => m.hwmKiB)) / 1024, 1) : null;
    };
    return {
      config,
      cases: full.times.cases,
      orchestratorMiB: peak('orchestrator'),
      workerMiB: peak('worker'),
      peerMiB: peak('peer'),
      workers: full.run.memory.filter((m) => m.role === 'worker').length,
      otherMiB: peak('other'),
    };
  });
  const max = (k: 'orchestratorMiB' | 'workerMiB' | 'peerMiB') => Math.max(...rows.map((r) => r[k] ?? 0));
  return {
    bench: 'rss',
    summary: { orchestratorPeakMiB: max('orchestratorMiB'), workerPeakMiB: max('workerMiB'), peerPeakMiB: max('peerMiB') },
    rows,
    notes: [
      'VmHWM from /proc/<pid>/status of `daxpin run` and every process under it, sampled every 250 ms until exit, default matrix and hold',
      'otherMiB: short-lived helpers (mkfs, losetup, fsck) when a sample caught one',
    ],
  };
}
