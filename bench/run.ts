// npm run bench → node dist/bench/run.js [--only NAME[,NAME]] [--reps N] [--hold-ms N]
//                                        [--canary-kb N] [--config NAME] [--kernel SPEC]
// Prints a table per benchmark and one `BENCH {json}` line per result. The ones that
// boot qemu (boot, matrix.vm; one guest at a time) run too unless DAXPIN_BENCH_VM=0;
// see bench/README.md.
import { boot } from './boot';
import { print, machine } from './common';
import { MATRIX_CONFIGS, NativeConfigRun, guestShapes, matrixNative, matrixVm } from './matrix';
import { overhead, OVERHEAD_CONFIGS } from './overhead';
import { rss } from './rss';

/** Benchmarks that boot qemu (boot, matrix.vm) are left out with DAXPIN_BENCH_VM=0 (a host without qemu, or one whose qemu slot is taken). */
const VM = process.env.DAXPIN_BENCH_VM !== '0';
/** An old kernel and the newest: what the boot and guests benchmarks boot. */
const DEFAULT_KERNELS = (process.env.DAXPIN_BENCH_KERNELS ?? '6.1,latest').split(/[\s,]+/).filter(Boolean);
/** What a nightly boots: every series (`daxpin vm --kernel all`). */
const MATRIX_VM_KERNELS = (process.env.DAXPIN_BENCH_VM_KERNELS ?? 'all').split(/[\s,]+/).filter(Boolean);

class UsageError extends Error {}

interface Args {
  only: string[] | null;
  reps: number;
  holdMs: number;
  canaryKb: number;
  kernels: string[];
  configs: string[] | null;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { only: null, reps: 5, holdMs: 1, canaryKb: 1024, kernels: [], configs: null };
  for (let i = 0; i < argv.length; i++) {
    const v = () => {
      const x = argv[++i];
      if (x === undefined) throw new UsageError(`${argv[i - 1]} needs a value`);
      return x;
    };
    const n = (x: string) => {
      if (!/^\d+$/.test(x)) throw new UsageError(`${argv[i - 1]} needs a whole number, got ${x}`);
      return Number(x);
    };
    switch (argv[i]) {
      case '--only':
        a.only = [...(a.only ?? []), ...v().split(',').filter(Boolean)];
        break;
      case '--reps':
        a.reps = Math.max(1, n(v()));
        break;
      case '--hold-ms':
        a.holdMs = n(v());
        break;
      case '--canary-kb':
        a.canaryKb = n(v());
        break;
      case '--config':
        a.configs = [...(a.configs ?? []), ...v().split(',').filter(Boolean)];
        break;
      case '--kernel':
        a.kernels.push(...v().split(',').filter(Boolean));
        break;
      default:
        throw new UsageError(`unknown argument ${argv[i]}; usage: run.js [--only boot,overhead,matrix,rss,guests] [--reps N] [--hold-ms N] [--canary-kb N] [--config NAME] [--kernel SPEC]`);
    }
  }
  return a;
}

const BENCHES = ['overhead', 'matrix', 'rss', 'boot', 'guests'] as const;
type BenchName = (typeof BENCHES)[number];

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  for (const name of args.only ?? []) if (!BENCHES.includes(name as BenchName)) throw new UsageError(`unknown benchmark ${name}; known: ${BENCHES.join(', ')}`);
  const selected = (name: BenchName) => (args.only ? args.only.includes(name) : true);
  const m = machine();
  process.stdout.write(`daxpin bench ${m.date}: ${m.cpus} cores, ${m.memGiB} GiB, ${m.os}, kernel ${m.kernel}, node ${m.node}\n`);
  const kernels = args.kernels.length ? args.kernels : DEFAULT_KERNELS;
  if (selected('overhead')) {
    for (const r of await overhead({ reps: args.reps, holdMs: args.holdMs, canaryKb: args.canaryKb, configs: args.configs ?? OVERHEAD_CONFIGS })) print(r);
  }
  let matrixRuns: NativeConfigRun[] | null = null;
  if (selected('matrix')) {
    const native = await matrixNative(args.configs ?? MATRIX_CONFIGS);
    matrixRuns = native.runs;
    print(native.result);
    if (VM) print(await matrixVm(args.kernels.length ? args.kernels : MATRIX_VM_KERNELS));
    else process.stdout.write('  (matrix.vm skipped: DAXPIN_BENCH_VM=0)\n');
  }
  if (selected('rss')) print(await rss(matrixRuns));
  if (args.only?.includes('boot') || (selected('boot') && VM)) print(await boot(kernels, Number(process.env.DAXPIN_BENCH_BOOT_REPS ?? 3)));
  else if (selected('boot')) process.stdout.write('\n== boot skipped: DAXPIN_BENCH_VM=0\n');
  // Boots the same kernels twice (two shapes): only when asked for.
  if (args.only?.includes('guests')) print(await guestShapes(kernels));
  return 0;
}

main().then(
  (code) => (process.exitCode = code),
  (e) => {
    process.stderr.write(`bench: ${e instanceof UsageError ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 2;
  },
);
