// Runs `daxpin run` (or `daxpin vm`) as a child process the way a user would, samples
// the memory of it and every process under it, and sums up the JSONL it wrote.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { CaseRecord, RunLine } from '../lib/outcome';
import { CLI, childrenOf, cmdlineOf, memoryOf } from './common';

/** Peak RSS per process seen under the run, by role. */
export interface ProcessMemory {
  pid: number;
  role: 'orchestrator' | 'worker' | 'peer' | 'other';
  hwmKiB: number;
}

export interface CliRun {
  argv: string[];
  exitCode: number | null;
  wallMs: number;
  stderrTail: string;
  memory: ProcessMemory[];
}

function roleOf(pid: number, root: number): ProcessMemory['role'] {
  if (pid === root) return 'orchestrator';
  const cmd = cmdlineOf(pid);
  if (/engine\/worker\.js/.test(cmd)) return 'worker';
  if (/engine\/peer-main\.js/.test(cmd)) return 'peer';
  return 'other';
}

/** Every descendant of pid, depth first. */
function descendants(pid: number): number[] {
  const out: number[] = [];
  for (const c of childrenOf(pid)) out.push(c, ...descendants(c));
  return out;
}

/**
 * Runs `node dist/lib/cli.js ...args`, polling /proc/<pid>/status (VmHWM) of the CLI
 * and all its descendants every `sampleMs`. VmHWM only grows, so the last sample of a
 * process is its peak up to `sampleMs` before it exited.
 */
export function runCli(args: string[], sampleMs = 250): Promise<CliRun> {
  const argv = [process.execPath, CLI, ...args];
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr = (stderr + String(d)).slice(-4000);
    });
    const seen = new Map<number, ProcessMemory>();
    const sample = () => {
      if (!child.pid) return;
      for (const pid of [child.pid, ...descendants(child.pid)]) {
        const m = memoryOf(pid);
        if (!m || !Number.isFinite(m.hwmKiB)) continue;
        const prev = seen.get(pid);
        if (prev) prev.hwmKiB = Math.max(prev.hwmKiB, m.hwmKiB);
        else seen.set(pid, { pid, role: roleOf(pid, child.pid), hwmKiB: m.hwmKiB });
      }
    };
    const timer = setInterval(sample, sampleMs);
    child.once('error', (e) => {
      clearInterval(timer);
      reject(e);
    });
    child.once('exit', (code) => {
      clearInterval(timer);
      resolve({ argv, exitCode: code, wallMs: performance.now() - t0, stderrTail: stderr.trim().split('\n').slice(-5).join('\n'), memory: [...seen.values()] });
    });
  });
}

export function readJsonl(file: string): RunLine[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as RunLine);
}

/** What a run's records say about where its time went. */
export interface RunTimes {
  cases: number;
  /** Σ durationMs of the case records (the orchestrator's clock, per case). */
  casesMs: number;
  /**
   * Σ of the designed wait of each case: the timeline holds until the op returns or
   * holdMs passes, whichever is first, so min(op.returnedMs, holdMs) (holdMs when the
   * op never returned); 0 for a case whose op never started.
   */
  holdsMs: number;
  /** Cases whose op did not return within the settle time (they waited settle + signal wait). */
  hung: number;
  /** Cases whose op returned only after the release. */
  blocked: number;
  /** Cases with status other than done. */
  notDone: number;
  /** From the run record's start to the first case's start: node, config set-up, worker start. */
  beforeFirstCaseMs: number | null;
}

export function runTimes(lines: RunLine[]): RunTimes {
  const cases = lines.filter((l): l is CaseRecord => l.record === 'case');
  const run = lines.find((l) => l.record === 'run');
  const hung = cases.filter((c) => c.op.hung !== null);
  const firstStart = cases.length ? Math.min(...cases.map((c) => Date.parse(c.startedAt))) : NaN;
  return {
    cases: cases.length,
    casesMs: cases.reduce((a, c) => a + c.durationMs, 0),
    // Only a case whose op started holds anything (an unsupported pin or op holds nothing).
    holdsMs: cases.reduce((a, c) => a + (c.op.started ? Math.min(c.op.returnedMs ?? c.holdMs, c.holdMs) : 0), 0),
    hung: hung.length,
    blocked: cases.filter((c) => c.op.blockedUntilRelease).length,
    notDone: cases.filter((c) => c.status !== 'done').length,
    beforeFirstCaseMs: run && Number.isFinite(firstStart) ? firstStart - Date.parse(run.startedAt) : null,
  };
}

/** Per-case cost beyond the designed waits: (Σ duration − Σ hold − hung × (settle + signal wait)) / cases. */
export function overheadPerCaseMs(t: RunTimes, settleMs = 2000, signalWaitMs = 1000): number {
  return t.cases ? (t.casesMs - t.holdsMs - t.hung * (settleMs + signalWaitMs)) / t.cases : NaN;
}
