// A blocking call of the addon as the timeline sees it: when its syscall was entered and
// left (taken on its own thread, CLOCK_MONOTONIC), what it returned, and its errno.
import { SyscallResult } from '../outcome';
import { BlockingCall, CallReturn, isSystemError, monoMs } from '../native';

export interface Settled {
  result: SyscallResult;
  /** The syscall's return value on success. */
  ret: number | null;
  /** The second value some calls report (FIDEDUPERANGE status). */
  aux: number | null;
  /** Syscall entry, CLOCK_MONOTONIC ms; null when the call never reached its thread. */
  enteredMs: number | null;
  /** Syscall return, CLOCK_MONOTONIC ms (where unknown: when the result reached JS). */
  at: number;
}

export interface Tracked {
  call: BlockingCall;
  settled: Promise<Settled>;
  done: Settled | null;
}

type Timed = { enteredNs?: number; exitedNs?: number };

function boundaries(v: Timed): { enteredMs: number | null; at: number } {
  const entered = v.enteredNs ? v.enteredNs / 1e6 : null;
  return { enteredMs: entered, at: v.exitedNs ? v.exitedNs / 1e6 : monoMs() };
}

export function failure(e: unknown): SyscallResult {
  if (isSystemError(e)) return { ok: false, errno: e.code };
  throw e;
}

/** Follows a blocking call to its end. */
export function track(call: BlockingCall): Tracked {
  const t: Tracked = {
    call,
    done: null,
    settled: call.promise.then(
      (r: CallReturn) => ({ result: { ok: true, errno: null }, ret: r.ret, aux: r.aux, ...boundaries(r) }),
      (e) => ({ result: failure(e), ret: null, aux: null, ...boundaries(e as Timed) }),
    ),
  };
  t.settled.then((s) => (t.done = s));
  return t;
}
