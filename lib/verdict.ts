// Verdicts over one case record: the outcome class (what happened, as a short
// stable string that two kernels can be compared by) and the invariant
// violations (what must never happen, on any kernel). Both are pure functions of
// what the worker measured; nothing here looks at a table of expectations.

import { findPinMethod } from './cases/matrix';
import type { CaseRecord, ConfigRecord, KernelLogLine, KernelLogRecord, Views } from './outcome';
import { splatOf } from './splats';

/**
 * The outcome class of a case, e.g. `waited`, `pin-refused:EOPNOTSUPP`,
 * `ok buf=zero pipe=written sigbus=buffer`.
 *
 * Grammar (tokens separated by one space; the head alone decides the cell colour):
 *
 *   class   := 'crashed' | 'error'                 the case has no usable measurement
 *            | 'unsupported'                        the case cannot exist here (no nbd module, no RDMA device ...)
 *            | head (' ' suffix)*
 *   head    := 'map-refused:' ERRNO                 mmap of the test file failed
 *            | 'pin-refused:' ERRNO                 the pin method failed to take its pin
 *            | 'hung-D' | 'hung-S'                  the op had not returned after the release
 *                                                   (task state D uninterruptible, S interruptible)
 *            | 'hung-woken'                         the op had not returned after the release; the
 *                                                   signal woke it and it returned (not EINTR)
 *            | 'abandoned'                          the worker was given up on and no hang was seen
 *            | 'not-started'                        map and pin worked but the op never started
 *            | 'ok'                                 the op succeeded while the pin was still held
 *            | 'waited'                             the op succeeded only after the pin was released
 *            | 'op-refused:' ERRNO                  the op failed while the pin was still held
 *            | 'waited-failed:' ERRNO               the op failed, and only after the release
 *   suffix  := VIEW '=' ViewClass                   a view that does not hold 'original' and
 *                                                   exists ('n/a' is left out), in the order
 *                                                   buf pipe file peer canary
 *            | 'sigbus=' VIEWNAME (',' VIEWNAME)*   where SIGBUS was taken on access
 *
 * ERRNO is the recorded errno name ('?' when a failure carries none). Timings
 * (how long the op waited) are details, not part of the class, so that the class
 * of a case compares equal across runs unless the behaviour changed.
 */
export function outcomeClass(rec: CaseRecord): string {
  const head = outcomeHead(rec);
  if (head === 'crashed' || head === 'error' || head === 'unsupported') return head;
  return [head, ...viewSuffixes(rec.views), ...sigbusSuffix(rec.sigbus)].join(' ');
}

function outcomeHead(rec: CaseRecord): string {
  if (rec.status === 'crashed' || rec.status === 'error' || rec.status === 'unsupported') return rec.status;
  // An abandoned worker took its map and pin results with it (they are not measured):
  // a hang seen in its threads is the measurement.
  if (rec.status !== 'abandoned' && !rec.map.ok) return `map-refused:${errnoName(rec.map.errno)}`;
  if (rec.status !== 'abandoned' && !rec.pin.ok) return `pin-refused:${errnoName(rec.pin.errno)}`;
  if (rec.op.hung === 'uninterruptible') return 'hung-D';
  if (rec.op.hung === 'interruptible') return 'hung-S';
  if (rec.op.hung === 'woken-by-signal') return 'hung-woken';
  if (rec.status === 'abandoned') return 'abandoned';
  if (!rec.op.started) return 'not-started';
  if (rec.op.ok) return rec.op.blockedUntilRelease ? 'waited' : 'ok';
  return `${rec.op.blockedUntilRelease ? 'waited-failed' : 'op-refused'}:${errnoName(rec.op.errno)}`;
}

/** What a woken op did once the signal woke it (nothing else had). */
function woken(rec: CaseRecord): string {
  if (rec.op.hung !== 'woken-by-signal') return '';
  return `; the signal woke it ${rec.op.signalledAtMs ?? '?'} ms after the release and it then ${rec.op.ok ? `returned ${rec.op.result}` : `failed ${errnoName(rec.op.errno)}`}`;
}

function errnoName(errno: string | null): string {
  return errno ?? '?';
}

/** Short view names used in outcome classes, in their fixed order. */
const VIEW_TOKENS: [keyof Views, string][] = [
  ['buffer', 'buf'],
  ['pipe', 'pipe'],
  ['file', 'file'],
  ['peer', 'peer'],
  ['canary', 'canary'],
];

function viewSuffixes(views: Views): string[] {
  return VIEW_TOKENS.filter(([view]) => views[view] !== 'original' && views[view] !== 'n/a').map(
    ([view, token]) => `${token}=${views[view]}`,
  );
}

function sigbusSuffix(sigbus: string[]): string[] {
  return sigbus.length === 0 ? [] : [`sigbus=${sigbus.join(',')}`];
}

/** The head of an outcome class: what decides its colour and its verdict. */
export function classHead(cls: string): string {
  return cls.split(' ')[0].split(':')[0];
}

export type ViolationKind =
  | 'foreign-data' // another file's bytes seen through the pin, the file, a peer or a canary
  | 'kernel-log' // a splat (lib/splats.ts: WARN/BUG/Oops/lockdep/hung task/KASAN/GPF/RCU stall, fs error or shutdown ...) in the case's log
  | 'taint' // the kernel's taint flags changed during the case (a WARN_ON_ONCE that fired earlier in the boot still taints)
  | 'hung-after-release' // the op was still stuck after the pin had been released
  | 'longterm-pin-on-fsdax' // a FOLL_LONGTERM pin was granted on a verified fsdax file
  | 'crashed' // the kernel panicked or wedged during the case
  | 'fsck'; // the filesystem checker found damage after the config's cases

export interface Violation {
  kind: ViolationKind;
  /**
   * What the violation is about, so the same violation compares equal across runs:
   * the view for foreign-data, the normalised signature for kernel-log, '' otherwise.
   */
  subject: string;
  /** One line for people. */
  detail: string;
}

export function violationKey(v: Violation): string {
  return v.subject === '' ? v.kind : `${v.kind}:${v.subject}`;
}

/** A FOLL_LONGTERM pin (the pin table's column): fsdax pages must never be pinned long-term. */
function isLongterm(pinMethod: string): boolean {
  return findPinMethod(pinMethod)?.longterm ?? false;
}

/** A line that means the kernel itself found something wrong (lib/splats.ts). */
export function isSevereKernelLine(line: KernelLogLine): boolean {
  return splatOf(line.text) !== null;
}

function kernelLogViolations(lines: KernelLogLine[]): Violation[] {
  const signatures = new Set(lines.filter(isSevereKernelLine).map((l) => l.signature));
  return [...signatures].map((signature) => ({ kind: 'kernel-log' as const, subject: signature, detail: signature }));
}

/** Taint bits that appeared between two readings. */
function taintViolations(before: number | null, after: number | null): Violation[] {
  if (before === null || after === null) return [];
  const added = after & ~before;
  return added === 0 ? [] : [{ kind: 'taint', subject: String(added), detail: `kernel taint changed ${before} -> ${after}` }];
}

/** Lines logged outside any case (set-up, between cases) are judged like a case's. */
export function kernelLogRecordViolations(rec: KernelLogRecord): Violation[] {
  return [...kernelLogViolations(rec.lines), ...taintViolations(rec.taintedBefore, rec.taintedAfter)];
}

/**
 * Faults of daxpin itself, told by the record alone: the record cannot be trusted as a
 * measurement. A control (no pin) can never have waited for a pin; a pin method that
 * did not fail must have been seen held, or the case measured nothing.
 */
export function harnessFaults(rec: CaseRecord): string[] {
  if (rec.status !== 'done') return [];
  const out: string[] = [];
  const method = findPinMethod(rec.pinMethod);
  if (method?.path === 'none' && rec.op.blockedUntilRelease) out.push('a control case without a pin was recorded as waited for the pin');
  if (method && method.path !== 'none' && rec.map.ok && rec.pin.errno === null && !rec.pin.held) {
    out.push(`the ${rec.pinMethod} pin was never seen held (no errno: the I/O completed or timed out without the kernel holding it)`);
  }
  if (rec.op.blockedUntilRelease && rec.op.wait === null) out.push('an op recorded as waited has no wait observed');
  return out;
}

export function invariantViolations(rec: CaseRecord): Violation[] {
  const out: Violation[] = [];
  for (const [view] of VIEW_TOKENS) {
    if (rec.views[view] === 'foreign') {
      out.push({ kind: 'foreign-data', subject: view, detail: `the ${view} view holds another file's bytes` });
    }
  }
  out.push(...kernelLogViolations(rec.kernelLog), ...taintViolations(rec.taintedBefore, rec.taintedAfter));
  if (rec.op.hung !== null) {
    const state = rec.op.taskState ?? (rec.op.hung === 'uninterruptible' ? 'D' : 'S');
    const top = rec.op.stack?.[0];
    out.push({
      kind: 'hung-after-release',
      subject: '',
      detail: `${rec.layoutOp} still stuck (${rec.op.hung}, state ${state}) after the pin was released${top ? `; stack top ${top}` : ''}${woken(rec)}`,
    });
  }
  if (isLongterm(rec.pinMethod) && rec.pin.ok && rec.daxVerified) {
    out.push({ kind: 'longterm-pin-on-fsdax', subject: '', detail: `${rec.pinMethod} pin granted on a DAX file` });
  }
  if (rec.status === 'crashed') {
    out.push({ kind: 'crashed', subject: '', detail: `kernel crashed or wedged: ${lastLine(rec.console) ?? 'no console captured'}` });
  }
  return out;
}

export function configViolations(rec: ConfigRecord): Violation[] {
  if (rec.fsck === null || rec.fsck.ok) return [];
  return [
    {
      kind: 'fsck',
      subject: '',
      detail: `${rec.fsck.tool} exited ${rec.fsck.exitCode}: ${lastLine(rec.fsck.output) ?? 'no output'}`,
    },
  ];
}

/**
 * The checks a config record carries, reported by the CI formats beside its
 * cases: fsck after the config's cases, and the config's setup when it failed.
 */
export interface ConfigCheck {
  name: 'fsck' | 'setup';
  verdict: 'violation' | 'error' | 'ok';
  detail: string;
}

export function configChecks(rec: ConfigRecord): ConfigCheck[] {
  const out: ConfigCheck[] = [];
  if (rec.error !== undefined) out.push({ name: 'setup', verdict: 'error', detail: rec.error });
  if (rec.fsck !== null) {
    const [violation] = configViolations(rec);
    out.push({ name: 'fsck', verdict: violation ? 'violation' : 'ok', detail: violation?.detail ?? `${rec.fsck.tool}: clean` });
  }
  return out;
}

function lastLine(text: string | undefined): string | undefined {
  return text
    ?.split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .pop();
}

/**
 * One word per cell for colour, filters and the CI formats. Precedence: a crash,
 * then any invariant violation, then a case without a measurement, then the
 * behaviour.
 *   crashed     the kernel crashed during the case
 *   violation   an invariant failed (red whatever the behaviour was)
 *   error       daxpin could not set the case up, or abandoned it without seeing a hang
 *   map-refused the mapping itself was refused: the case does not apply to this config
 *   unsupported the pin or op cannot exist on this host or kernel (record.reason says why)
 *   refused     the pin or the op was refused with an errno
 *   waited      the op returned only after the pin was released
 *   ok          the op returned while the pin was held
 */
export type Verdict = 'crashed' | 'violation' | 'error' | 'map-refused' | 'unsupported' | 'refused' | 'waited' | 'ok';

export function verdictOf(rec: CaseRecord, violations: Violation[] = invariantViolations(rec)): Verdict {
  if (rec.status === 'crashed') return 'crashed';
  if (violations.length > 0) return 'violation';
  switch (classHead(outcomeClass(rec))) {
    case 'error':
    case 'abandoned':
    case 'not-started':
      return 'error';
    case 'map-refused':
      return 'map-refused';
    case 'unsupported':
      return 'unsupported';
    case 'pin-refused':
    case 'op-refused':
      return 'refused';
    case 'waited':
    case 'waited-failed':
      return 'waited';
    default:
      return 'ok';
  }
}
