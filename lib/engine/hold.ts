// When to release a held pin, and what the op's thread was doing: pure functions over
// samples of /proc/self/task/TID taken while the pin is held (the timeline samples,
// these decide). Nothing here reads a clock or a file.
import { HungState, ThreadWait } from '../outcome';

export type HoldMode = 'evidence' | 'fixed';

export interface HoldPolicy {
  /**
   * 'evidence': release once the op returned, or once its thread has been seen asleep
   * in its syscall for dwellMs without a break, or at holdMs. 'fixed': hold holdMs.
   */
  mode: HoldMode;
  holdMs: number;
  dwellMs: number;
}

/** One look at the op's thread. `inCall`: it had entered its syscall and not left it. */
export interface ThreadSample {
  /** ms since the op's syscall was entered (or since the op was started, before entry). */
  atMs: number;
  inCall: boolean;
  state: string | null;
  wchan: string | null;
  /** Stack frames as read (may be null when unreadable or not read for this sample). */
  stack: string[] | null;
}

/** Asleep in the kernel: interruptible or uninterruptible sleep. */
export function isAsleep(s: ThreadSample): boolean {
  return s.inCall && (s.state === 'S' || s.state === 'D');
}

/** When the thread's current uninterrupted sleep in its call began (ms), or null if it is not asleep now. */
export function asleepSince(samples: ThreadSample[]): number | null {
  let since: number | null = null;
  for (const s of samples) since = isAsleep(s) ? (since ?? s.atMs) : null;
  return since;
}

export function shouldRelease(p: HoldPolicy, nowMs: number, opReturned: boolean, asleepSinceMs: number | null): boolean {
  if (nowMs >= p.holdMs) return true;
  if (p.mode === 'fixed') return false;
  return opReturned || (asleepSinceMs !== null && nowMs - asleepSinceMs >= p.dwellMs);
}

/** Within one sleep, a stack is read on every STACK_EVERY-th sample. */
export const STACK_EVERY = 5;

/**
 * Whether the next look at a thread that sleeps in its call should read its stack and
 * wchan: when a sleep begins, and every STACK_EVERY samples while it lasts (the last
 * look before the release always reads them). Under TCG each /proc read costs about a
 * millisecond; reading three files on every 2 ms sample was most of a waited case.
 */
export function stackDue(previous: ThreadSample[]): boolean {
  let since = 0;
  for (let i = previous.length - 1; i >= 0 && isAsleep(previous[i]); i--, since++) {
    if (previous[i].stack !== null) return since >= STACK_EVERY - 1;
  }
  return true;
}

/** A kernel stack frame without its offset: "dax_layout_busy_page_range+0x1a/0x2b0" -> "dax_layout_busy_page_range". */
export function frameName(frame: string): string {
  return frame.replace(/\+0x[0-9a-f]+\/0x[0-9a-f]+.*$/i, '').replace(/^\?\s*/, '').trim();
}

/**
 * The op's last wait: the state, wchan and stack of the most recent run of asleep
 * samples, timed from the first sample of that run. Null when the thread was never
 * seen asleep in its call.
 */
export function lastWait(samples: ThreadSample[]): ThreadWait | null {
  let wait: ThreadWait | null = null;
  let prev: ThreadSample | null = null;
  for (const s of samples) {
    if (!isAsleep(s)) {
      prev = null;
      continue;
    }
    const site = s.stack ? s.stack.map(frameName).filter((f) => f.length > 0) : null;
    const same = prev !== null && wait !== null && wait.state === s.state && (site === null || sameSite(wait.site, site));
    if (!same) wait = { state: s.state!, wchan: s.wchan, site: site ?? [], atMs: round(s.atMs) };
    else if (wait && wait.site.length === 0 && site) wait.site = site;
    prev = s;
  }
  return wait;
}

function sameSite(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((f, i) => f === b[i]);
}

const round = (ms: number) => Math.round(ms * 10) / 10;

/**
 * What a signal to an op still in its call after release + settle showed: still there
 * after the signal's wait, 'uninterruptible'; EINTR, 'interruptible'; any other return
 * (its result, another errno), 'woken-by-signal': its wait's condition already held, and
 * only the signal woke it (a lost wake-up; the handler has no SA_RESTART, so this is not
 * a restarted call).
 */
export function hungAfterSignal(returned: boolean, errno: string | null): HungState {
  if (!returned) return 'uninterruptible';
  return errno === 'EINTR' ? 'interruptible' : 'woken-by-signal';
}
