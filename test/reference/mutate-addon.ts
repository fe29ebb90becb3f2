// npm run mutate:addon [-- NAME...]: runs the raw-fact comparison with daxpin's addon
// lying (test/reference/lying-addon.c, LD_PRELOAD), one mutation at a time, over the
// cases that make the mutated syscall; each run must FAIL. Prints which mutation was
// caught by which cases; exits 1 if any mutation survived. Needs root.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const COMPARE = path.join(ROOT, 'dist', 'test', 'integration', 'reference-compare.test.js');

export interface Mutation {
  /** DAXPIN_LIE value. */
  lie: string;
  /** The cases that make the syscall (DAXPIN_REFERENCE_CASES). */
  cases: string;
  configs?: string;
}

const ALL = 'tmpfs,ext4,xfs';
export const MUTATIONS: Mutation[] = [
  { lie: 'ftruncate', cases: '*.truncate-*.*' },
  { lie: 'punch-hole', cases: '*.punch-hole.*' },
  { lie: 'zero-range', cases: '*.zero-range.*' },
  { lie: 'collapse-range', cases: '*.collapse-range.*' },
  { lie: 'insert-range', cases: '*.insert-range.*' },
  { lie: 'ficlone', cases: '*.ficlone-*.*' },
  { lie: 'ficlone:EOPNOTSUPP', cases: '*.ficlone-*.*' },
  { lie: 'ficlonerange', cases: '*.ficlonerange.*' },
  { lie: 'ficlonerange:EOPNOTSUPP', cases: '*.ficlonerange.*' },
  { lie: 'dedupe', cases: '*.dedupe.*' },
  { lie: 'dedupe:EOPNOTSUPP', cases: '*.dedupe.*' },
  { lie: 'copy-range', cases: '*.copy-range.*' },
  { lie: 'fssetxattr', cases: '*.dax-flag.*' },
  { lie: 'unlink', cases: '*.unlink.*,*.unlink-umount.*' },
  { lie: 'freeze', cases: '*.freeze.*' },
  // tmpfs has no freeze: there the kernel's own answer is EOPNOTSUPP.
  { lie: 'freeze:EOPNOTSUPP', cases: '*.freeze.*', configs: 'ext4,xfs' },
  // Only the control: with a held pin daxpin writes canaries after the op, into the
  // filesystem the lie left frozen, and that write sleeps uninterruptibly until a thaw
  // no one makes (the clean-up's, after it, is real). A thaw that lies "done" changes
  // nothing daxpin looks at before that write: it is not among the mutations.
  { lie: 'thaw:EIO', cases: 'none.freeze.*', configs: 'ext4,xfs' },
  { lie: 'umount', cases: '*.umount.*,*.unlink-umount.*' },
  { lie: 'umount:EBUSY', cases: '*.umount.*,*.unlink-umount.*' },
  { lie: 'read', cases: 'odirect-read.*' },
  { lie: 'write', cases: 'odirect-write.*' },
  { lie: 'uring-io', cases: 'uring-read.*,uring-write.*' },
  { lie: 'aio-io', cases: 'aio-read.*,aio-write.*' },
  { lie: 'uring-register', cases: 'uring-fixed.*' },
  { lie: 'vmsplice', cases: 'vmsplice.*' },
];

export function buildLyingAddon(dir: string): string {
  const out = path.join(dir, 'lying-addon.so');
  execFileSync('cc', ['-O2', '-Wall', '-shared', '-fPIC', '-o', out, path.join(ROOT, 'test', 'reference', 'lying-addon.c'), '-ldl'], { stdio: ['ignore', 'ignore', 'inherit'] });
  return out;
}

export interface MutantRun {
  mutation: Mutation;
  /** Cases' facts disagreed (the comparison failed on them): the lie was caught. */
  caught: boolean;
  /** Case ids (config/caseId) whose facts disagreed. */
  failed: string[];
  seconds: number;
}

/** Runs the comparison under one lie; the TAP output names the cases that failed. */
export function runMutant(shim: string, m: Mutation): MutantRun {
  const t0 = performance.now();
  // No tap timeout: a run cut short would fail without any case having been compared.
  const env = { ...process.env, TAP_TIMEOUT: '0', LD_PRELOAD: shim, DAXPIN_LIE: m.lie, DAXPIN_REFERENCE_CASES: m.cases, DAXPIN_REFERENCE_CONFIGS: m.configs ?? ALL };
  const r = spawnSync(process.execPath, [COMPARE], { env, encoding: 'utf8', maxBuffer: 64 << 20 });
  const failed: string[] = [];
  let config = '';
  for (const line of r.stdout.split('\n')) {
    const c = /^\s*# Subtest: (\S+): daxpin's records/.exec(line);
    if (c) config = c[1];
    const f = /^\s*not ok \d+ - ([a-z-]+\.[a-z-]+\.[a-z-]+)/.exec(line);
    if (f) failed.push(`${config}/${f[1]}`);
  }
  // Caught only when cases disagreed: a crash or a timeout proves nothing about the facts.
  return { mutation: m, caught: r.status !== 0 && failed.length > 0, failed, seconds: Math.round((performance.now() - t0) / 100) / 10 };
}

function summary(failed: string[]): string {
  const byConfig = new Map<string, number>();
  for (const f of failed) byConfig.set(f.split('/')[0], (byConfig.get(f.split('/')[0]) ?? 0) + 1);
  return [...byConfig].map(([c, n]) => `${c} ${n}`).join(', ');
}

function main(): number {
  if (process.getuid?.() !== 0) {
    process.stderr.write('mutate:addon needs root (it runs cases on loop filesystems)\n');
    return 2;
  }
  const only = process.argv.slice(2);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'daxpin-mutate-'));
  try {
    const shim = buildLyingAddon(dir);
    let survived = 0;
    process.stdout.write('| mutation (DAXPIN_LIE) | cases run | caught | failing cases per config | e.g. |\n|---|---|---|---|---|\n');
    for (const m of MUTATIONS.filter((x) => only.length === 0 || only.includes(x.lie))) {
      const r = runMutant(shim, m);
      if (!r.caught) survived++;
      process.stdout.write(`| \`${m.lie}\` | \`${m.cases}\` | ${r.caught ? 'yes' : '**NO**'} | ${summary(r.failed) || '-'} | ${r.failed.slice(0, 2).join(' ')} |\n`);
    }
    process.stdout.write(survived ? `${survived} mutation(s) survived\n` : 'every mutation was caught\n');
    return survived ? 1 : 0;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) process.exitCode = main();
