// The orchestrator never makes a call that can block in the kernel: it hands
// each case to a worker process, watches the clock, reads the kernel log and
// taint around the case, and turns what the worker saw into a CaseRecord.
import { ChildProcess, fork } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Case } from '../cases/matrix';
import { CaseRecord, unmeasuredCase } from '../outcome';
import { harnessFaults } from '../verdict';
import { register, runOwned } from '../host/lifecycle';
import { HoldMode } from './hold';
import { KernelLog, markKernelLog, readTainted, toKernelLogLines } from './kmsg';
import { removeStaleTraceInstances } from './pmd';
import { FromWorker, ToWorker } from './protocol';
import { isDying, readAllTasks, TaskState } from './tasks';
import { CaseObservation, OwnedMount, TimelineOptions } from './protocol';

export interface CaseTiming {
  /** The longest a pin is held; with holdMode 'evidence' it is released as soon as the op is seen asleep for dwellMs. */
  holdMs: number;
  holdMode: HoldMode;
  dwellMs: number;
  settleMs: number;
  signalWaitMs: number;
  /** Budget for everything in a case besides hold, settle and signal wait. */
  caseBudgetMs: number;
  canaryBytes: number;
}

export interface RunIdentity {
  runId: string;
  kernel: string;
  host: string;
}

type WorkerAnswer =
  | { kind: 'result'; observation: CaseObservation }
  | { kind: 'failed'; error: string }
  | { kind: 'timeout'; pid: number | null; tasks: TaskState[]; opTid: number | null }
  | { kind: 'died'; how: string }
  | { kind: 'peer-gone'; how: string; beforeCase: boolean };

/** Cleanup the orchestrator cannot do itself (FUSE connection abort lives with the configs). */
export type FuseCleanup = (mountPoint: string) => Promise<void>;

class Worker {
  readonly child: ChildProcess;
  readonly fuseMount: string;
  private waiting: ((m: FromWorker | { type: 'exit'; how: string }) => void) | null = null;
  /** Messages that arrived while nobody was waiting. */
  private unread: FromWorker[] = [];
  exited = false;
  exitHow = '';
  /** The op thread of the case in progress, as the worker announced it. */
  opThread: { seq: number; tid: number } | null = null;
  /** Set when the worker said its FUSE peer died: it exits, and is never given another case. */
  peerGone: string | null = null;
  /** The case the worker was running when its peer died (null: between cases). */
  peerGoneSeq: number | null = null;
  unregister: () => void = () => undefined;
  /** Its retirement, once begun: whoever asks again (a signal's teardown, the run loop) waits for the same one. */
  retiring: Promise<void> | null = null;

  constructor(fuseMount: string) {
    this.fuseMount = fuseMount;
    this.child = fork(path.join(__dirname, 'worker.js'), [fuseMount], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (m: FromWorker) => this.deliver(m));
    this.child.on('exit', (code, signal) => {
      this.exited = true;
      this.exitHow = signal ? `killed by ${signal}` : `exited with code ${code}`;
      this.deliver({ type: 'exit', how: this.exitHow });
    });
    this.child.on('error', () => undefined);
  }

  private deliver(m: FromWorker | { type: 'exit'; how: string }): void {
    if (m.type === 'op-thread') {
      this.opThread = { seq: m.seq, tid: m.tid };
      return;
    }
    if (m.type === 'peer-gone') {
      this.peerGone = m.how;
      this.peerGoneSeq = m.seq;
      // Between cases it concerns no case: the next case goes to a fresh worker.
      if (m.seq === null) return;
    }
    const w = this.waiting;
    this.waiting = null;
    if (w) w(m);
    else if (m.type !== 'exit') this.unread.push(m);
  }

  next(timeoutMs: number): Promise<FromWorker | { type: 'exit'; how: string } | null> {
    const m = this.unread.shift();
    if (m) return Promise.resolve(m);
    if (this.exited) return Promise.resolve({ type: 'exit', how: this.exitHow });
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting = null;
        resolve(null);
      }, timeoutMs);
      this.waiting = (m) => {
        clearTimeout(timer);
        resolve(m);
      };
    });
  }

  send(m: ToWorker): void {
    if (!this.exited && this.child.connected) this.child.send(m);
  }
}

/** Never recursive: if the FUSE mount is somehow still there, leave it rather than walk into it. */
function removeMountDir(dir: string): void {
  try {
    fs.rmdirSync(dir);
  } catch {
    // Still mounted (lazily detached) or already gone: nothing to do.
  }
}

/** How often the orchestrator looks whether a silent worker is dying. */
const DYING_POLL_MS = 250;

export class Orchestrator {
  private worker: Worker | null = null;
  /** A worker start in progress (warmUp() or the first case). */
  private starting: Promise<Worker> | null = null;
  private seq = 0;

  constructor(
    private readonly identity: RunIdentity,
    private readonly timing: CaseTiming,
    private readonly workDir: string,
    private readonly fuseCleanup: FuseCleanup,
    /** The run's one kernel-log reader; what is logged between cases is the run's to take. */
    private readonly kernelLog: KernelLog,
  ) {}

  /**
   * Starts the worker now, without waiting for it: two node starts (worker and FUSE
   * peer) take seconds under TCG, and can overlap a config's mkfs. A failure here is
   * left for the first case to report.
   */
  warmUp(): void {
    this.ensureWorker().catch(() => undefined);
  }

  private ensureWorker(): Promise<Worker> {
    const w = this.worker;
    if (w && !w.exited && w.peerGone === null) return Promise.resolve(w);
    // A worker that died (or lost its peer) between cases: undo its FUSE mount first.
    if (!this.starting) this.starting = (w ? this.retire(w) : Promise.resolve()).then(() => this.startWorker()).finally(() => (this.starting = null));
    return this.starting;
  }

  private async startWorker(): Promise<Worker> {
    const mount = fs.mkdtempSync(path.join(this.workDir, 'fuse-'));
    const w = new Worker(mount);
    // A fatal signal must not leave a worker (and its FUSE mount) behind.
    w.unregister = register('daxpin worker', () => this.retire(w), { early: true });
    // node starts in ~1.6 s under TCG; a minute means something is wrong.
    const first = await w.next(60_000);
    if (!first || first.type !== 'ready') {
      await this.retire(w);
      throw new Error(`worker did not start: ${first && first.type === 'exit' ? first.how : 'no answer in 60 s'}`);
    }
    this.worker = w;
    return w;
  }

  /** Kills a worker, aborts its FUSE connection (which releases held pins) and checks it is gone. */
  private retire(w: Worker): Promise<void> {
    if (this.worker === w) this.worker = null;
    w.unregister();
    // A signal arriving meanwhile lets this finish before the process exits. Once per
    // worker: a second kill would find its FUSE mount already gone (umount2: ENOENT).
    return (w.retiring ??= runOwned(() => this.kill(w)));
  }

  private async kill(w: Worker): Promise<void> {
    if (!w.exited) w.child.kill('SIGKILL');
    await this.fuseCleanup(w.fuseMount);
    const gone = w.exited || (await w.next(3000)) !== null || w.exited;
    // A worker that cannot die (a thread in D state) is never reused; its case record says which threads were stuck.
    removeMountDir(w.fuseMount);
    // A killed worker could not remove its fs_dax trace instance.
    if (gone) removeStaleTraceInstances();
  }

  /**
   * The worker's next message, its exit, or null at the deadline. A worker killed by
   * a signal (from outside, or a crash) while the kernel holds one of its FUSE
   * requests cannot finish dying: the killed caller waits in D state for the reply of
   * the peer, which is its own child and waits for it to exit. Seeing it dying, abort
   * its FUSE connection, so it exits and the case is recorded at once.
   */
  private async answer(w: Worker, timeoutMs: number): Promise<FromWorker | { type: 'exit'; how: string } | null> {
    const until = performance.now() + timeoutMs;
    for (;;) {
      const left = until - performance.now();
      const m = await w.next(Math.max(0, Math.min(left, DYING_POLL_MS)));
      if (m !== null || left <= DYING_POLL_MS) return m;
      if (w.child.pid && isDying(w.child.pid)) await this.fuseCleanup(w.fuseMount);
    }
  }

  async runCase(c: Case, testDir: string, pmdExtentHint: boolean, mount: OwnedMount | null = null): Promise<CaseRecord> {
    const startedAt = new Date();
    const t0 = performance.now();
    const seq = ++this.seq;
    // A marker for whoever reads the console or dmesg: which case the lines after it are
    // from. daxpin's reader skips it (user-space facility).
    markKernelLog(`daxpin: begin ${c.config.name}/${c.id}`);
    const taintedBefore = readTainted();
    const options: TimelineOptions = {
      dir: testDir,
      hold: { mode: this.timing.holdMode, holdMs: this.timing.holdMs, dwellMs: this.timing.dwellMs },
      settleMs: this.timing.settleMs,
      signalWaitMs: this.timing.signalWaitMs,
      canaryBytes: this.timing.canaryBytes,
      pmdExtentHint,
      mount,
    };
    let answer: WorkerAnswer;
    // A second attempt only when the worker lost its peer before it took this case up.
    for (let attempt = 1; ; attempt++) {
      answer = await this.attempt(c, seq, options);
      if (answer.kind !== 'peer-gone' || !answer.beforeCase || attempt === 2) break;
    }
    const log = toKernelLogLines(this.kernelLog.take());
    const rec = this.record(c, answer, {
      startedAt: startedAt.toISOString(),
      durationMs: Math.round(performance.now() - t0),
      kernelLog: log.lines,
      ...(log.dropped > 0 ? { kernelLogDropped: log.dropped } : {}),
      taintedBefore,
      taintedAfter: readTainted(),
    });
    const faults = harnessFaults(rec);
    return faults.length > 0 ? { ...rec, harnessFaults: faults } : rec;
  }

  private async attempt(c: Case, seq: number, options: TimelineOptions): Promise<WorkerAnswer> {
    try {
      const w = await this.ensureWorker();
      w.send({ type: 'case', seq, config: c.config.name, mapping: c.mapping.name, pinMethod: c.pinMethod.name, layoutOp: c.layoutOp.name, options });
      const deadline = this.timing.caseBudgetMs + this.timing.holdMs + this.timing.settleMs + this.timing.signalWaitMs;
      const m = await this.answer(w, deadline);
      if (m === null) {
        const opTid = w.opThread?.seq === seq ? w.opThread.tid : null;
        const answer: WorkerAnswer = { kind: 'timeout', pid: w.child.pid ?? null, tasks: w.child.pid ? readAllTasks(w.child.pid) : [], opTid };
        await this.retire(w);
        return answer;
      }
      if (m.type === 'peer-gone' || (m.type === 'exit' && w.peerGone !== null)) {
        await this.retire(w);
        return { kind: 'peer-gone', how: w.peerGone ?? (m as { how: string }).how, beforeCase: w.peerGoneSeq !== seq };
      }
      if (m.type === 'exit') {
        await this.retire(w);
        return { kind: 'died', how: m.how };
      }
      if (m.type === 'result') {
        if (m.observation.retire) await this.retire(w);
        return { kind: 'result', observation: m.observation };
      }
      if (m.type === 'failed') return { kind: 'failed', error: m.error };
      return { kind: 'failed', error: `unexpected worker message ${m.type}` };
    } catch (e) {
      return { kind: 'failed', error: e instanceof Error ? e.message : String(e) };
    }
  }

  private record(
    c: Case,
    a: WorkerAnswer,
    meta: Pick<CaseRecord, 'startedAt' | 'durationMs' | 'kernelLog' | 'kernelLogDropped' | 'taintedBefore' | 'taintedAfter'>,
  ): CaseRecord {
    const base: CaseRecord = {
      ...unmeasuredCase({
        runId: this.identity.runId,
        caseId: c.id,
        kernel: this.identity.kernel,
        host: this.identity.host,
        config: c.config.name,
        fsType: c.config.fsType,
        mapping: c.mapping.name,
        pinMethod: c.pinMethod.name,
        layoutOp: c.layoutOp.name,
        holdMs: this.timing.holdMs,
        settleMs: this.timing.settleMs,
        status: 'done',
        startedAt: meta.startedAt,
        durationMs: meta.durationMs,
      }),
      ...meta,
    };
    switch (a.kind) {
      case 'result': {
        const o = a.observation;
        if (o.unsupported !== null) return { ...base, status: 'unsupported', reason: o.unsupported };
        return {
          ...base,
          daxVerified: o.daxVerified,
          pmd: o.pmd,
          map: o.map,
          pin: o.pin,
          op: o.op,
          views: o.views,
          viewDetail: o.viewDetail,
          file: o.file,
          sigbus: o.sigbus,
          release: o.release,
          canary: o.canary,
          ...(o.notes.length ? { notes: o.notes } : {}),
        };
      }
      case 'failed':
        return { ...base, status: 'error', error: a.error };
      case 'died':
        return { ...base, status: 'error', error: `worker ${a.how} during the case; nothing it measured is kept (a fresh worker takes the next case)` };
      case 'peer-gone':
        // Its O_DIRECT calls failed with ENOTCONN because daxpin's own server died: no
        // answer of the kernel about pins, so nothing the worker saw is kept.
        return { ...base, status: 'error', error: `${a.how} during the case; nothing measured through it is kept (a fresh worker and peer take the next case)` };
      case 'timeout': {
        // The worker stopped answering. Only the op's own thread (as the worker announced
        // it) speaks for the op: a thread of it in D at the deadline is a hang measured;
        // any other stuck thread is told in the error, never passed off as the op's.
        const stuck = a.tasks.filter((t) => t.state === 'D');
        const opTask = a.opTid === null ? undefined : a.tasks.find((t) => t.tid === a.opTid);
        const op = {
          ...base.op,
          started: a.opTid !== null,
          hung: opTask?.state === 'D' ? ('uninterruptible' as const) : null,
          taskState: opTask?.state ?? null,
          stack: opTask?.stack ?? null,
        };
        const main = a.tasks.find((t) => t.tid === a.pid);
        const mainState = main ? `${main.state ?? '?'}${main.wchan ? ` in ${main.wchan}` : ''}` : 'gone';
        const states = [...new Set(a.tasks.map((t) => t.state ?? '?'))].map((s) => `${s} ${a.tasks.filter((t) => (t.state ?? '?') === s).length}`);
        return {
          ...base,
          status: 'abandoned',
          op,
          error: `worker did not answer within its deadline; threads in D state: ${stuck.length}; main thread ${mainState}; threads by state: ${states.join(', ') || 'none'}`,
        };
      }
    }
  }

  async close(): Promise<void> {
    // A start in progress finishes first: its worker is closed like any other.
    await this.starting?.catch(() => undefined);
    const w = this.worker;
    this.worker = null;
    if (!w) return;
    w.send({ type: 'exit' });
    await w.next(5000);
    // Also a worker that exited on its own (its peer died after the last case) leaves
    // a FUSE mount to abort and unmount.
    await this.retire(w);
  }
}
