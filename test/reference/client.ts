// The reference program (test/reference/case.c) built and driven from TypeScript: one
// long-lived child per directory, a case id in, its raw facts out (one JSON line), so
// neither the tests nor the benchmark count its process start per case.
import { ChildProcessWithoutNullStreams, execFileSync, spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import type { OwnedMount } from '../../lib/configs/setup';
import type { FileFacts } from '../../lib/outcome';

/** The package root (dist/test/reference/x.js → ../../..). */
const ROOT = path.resolve(__dirname, '..', '..', '..');
export const REFERENCE_SOURCE = path.join(ROOT, 'test', 'reference', 'case.c');

export interface Outcome {
  ok: boolean;
  errno: string | null;
}

/** What the reference printed for one case: raw facts, no classes. */
export interface ReferenceFacts {
  caseId: string;
  error?: string;
  /** The case cannot run as asked (a filesystem op without the filesystem's mount): nothing else is printed. */
  unsupported?: string;
  daxVerified: boolean;
  pmd: boolean | null;
  map: Outcome;
  pin?: Outcome & { held: boolean };
  file?: { before: FileFacts | null; after: FileFacts | null; pathAfter: Outcome | null };
  op?: Outcome & {
    started: boolean;
    result: number | null;
    dedupe: { status: 'same' | 'differs'; bytesDeduped: number } | null;
    returnedMs: number | null;
    /** The hold saw the op's thread asleep in its call (evidence mode samples; daxpin's op.wait). */
    seenAsleep: boolean;
    asleepAtRelease: boolean;
    blockedUntilRelease: boolean;
    hung: string | null;
  };
  release?: Outcome & { result: number | null };
  views?: { pages: { buffer: string; pipe: string; file: string; peer: string; canary: string } };
  canary?: { files: number; bytes: number };
  sigbus?: string[];
  /** Wall time of the case inside the program, ms. */
  wallMs: number;
}

export interface ReferenceOptions {
  holdMs: number;
  holdMode?: 'evidence' | 'fixed';
  dwellMs?: number;
  sampleMs?: number;
  settleMs?: number;
  canaryBytes: number;
  /** Give pmd test files a 2 MiB extent size hint (XFS), as daxpin does for such configs. */
  extentHint?: boolean;
  /** Where the program mounts its FUSE peer (default: the test directory). */
  fuseDir?: string;
  /** Append and fsync every result line here, as daxpin does its JSONL. */
  results?: string;
  /** The filesystem's mount, for the freeze and umount ops (as daxpin's worker gets it); without it they are unsupported. */
  mount?: OwnedMount | null;
}

/** Compiles case.c with `cc -O2` into `dir`; returns the binary's path. */
export function buildReference(dir: string): string {
  const out = path.join(dir, 'daxpin-reference');
  execFileSync('cc', ['-O2', '-Wall', '-o', out, REFERENCE_SOURCE, '-lpthread'], { stdio: ['ignore', 'ignore', 'inherit'] });
  return out;
}

export function referenceArgs(dir: string, o: ReferenceOptions): string[] {
  const a = ['--serve', '--hold-ms', String(o.holdMs), '--canary-bytes', String(o.canaryBytes)];
  if (o.holdMode) a.push('--hold-mode', o.holdMode);
  if (o.dwellMs !== undefined) a.push('--dwell-ms', String(o.dwellMs));
  if (o.sampleMs !== undefined) a.push('--sample-ms', String(o.sampleMs));
  if (o.settleMs !== undefined) a.push('--settle-ms', String(o.settleMs));
  if (o.extentHint) a.push('--extent-hint');
  if (o.fuseDir) a.push('--fuse-dir', o.fuseDir);
  if (o.results) a.push('--results', o.results);
  if (o.mount) a.push('--mount-source', o.mount.source, '--mount-target', o.mount.target, '--mount-type', o.mount.fsType, '--mount-data', o.mount.data);
  a.push(dir);
  return a;
}

export class Reference {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly waiting: Array<(line: string | null) => void> = [];
  private stderr = '';

  constructor(binary: string, dir: string, o: ReferenceOptions) {
    // The environment stays as it is, LD_PRELOAD included: a shim that lies for
    // daxpin's addon must not reach this program (test/reference/lying-addon.c
    // only answers calls made from the addon).
    this.child = spawn(binary, referenceArgs(dir, o), { stdio: ['pipe', 'pipe', 'pipe'] });
    readline.createInterface({ input: this.child.stdout }).on('line', (l) => this.waiting.shift()?.(l));
    this.child.stderr.on('data', (d) => (this.stderr += String(d)));
    this.child.on('exit', () => {
      for (const w of this.waiting.splice(0)) w(null);
    });
  }

  run(caseId: string): Promise<ReferenceFacts> {
    return new Promise((resolve, reject) => {
      this.waiting.push((line) => {
        if (line === null) return reject(new Error(`the reference exited: ${this.stderr.trim()}`));
        const facts = JSON.parse(line) as ReferenceFacts;
        if (facts.caseId !== caseId || facts.error) return reject(new Error(`reference: ${line}`));
        resolve(facts);
      });
      this.child.stdin.write(`${caseId}\n`);
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return resolve();
      this.child.once('exit', () => resolve());
      this.child.stdin.end();
    });
  }
}
