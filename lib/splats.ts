// What counts as the kernel saying something went wrong: one table of splats, and one
// of known noise, read by the case judge (lib/verdict.ts), the kernel-log reader
// (lib/engine/kmsg.ts) and the guest console parser (lib/vm). The fstests model: one
// `_check_dmesg` list and one filter. Patterns match the raw line text; case matters
// where the kernel's splats are upper case ("WARNING: CPU: …") and ordinary notices are
// not ("XFS (pmem0): DAX enabled. Warning: EXPERIMENTAL").

export type SplatKind =
  | 'panic'
  | 'oops'
  | 'bug'
  | 'warning'
  | 'lockdep'
  | 'hung-task'
  | 'kasan'
  | 'ubsan'
  | 'gpf'
  | 'rcu-stall'
  | 'lockup'
  | 'refcount'
  | 'list-corruption'
  | 'bad-page'
  | 'fs-error'
  | 'fs-shutdown'
  | 'crash-trigger';

export interface Splat {
  kind: SplatKind;
  re: RegExp;
  /** syslog level the console (which carries none) stands for. */
  consoleLevel: number;
}

export const SPLATS: Splat[] = [
  { kind: 'panic', re: /Kernel panic - not syncing/, consoleLevel: 0 },
  { kind: 'oops', re: /\bOops\b/, consoleLevel: 1 },
  { kind: 'bug', re: /\bBUG: |kernel BUG at/, consoleLevel: 1 },
  { kind: 'gpf', re: /general protection fault/i, consoleLevel: 1 },
  { kind: 'warning', re: /\bWARNING: /, consoleLevel: 4 },
  { kind: 'lockdep', re: /possible (circular|recursive) locking|inconsistent lock state|\blockdep\b.*(warning|splat|turning off)/i, consoleLevel: 4 },
  { kind: 'hung-task', re: /blocked for more than \S+ seconds/, consoleLevel: 3 },
  { kind: 'kasan', re: /\bKASAN\b/, consoleLevel: 3 },
  { kind: 'ubsan', re: /\bUBSAN\b/, consoleLevel: 3 },
  { kind: 'rcu-stall', re: /\brcu\b.*\bstall/i, consoleLevel: 3 },
  { kind: 'lockup', re: /soft lockup|hard LOCKUP/, consoleLevel: 0 },
  { kind: 'refcount', re: /refcount_t: /, consoleLevel: 4 },
  { kind: 'list-corruption', re: /list_(add|del) corruption/, consoleLevel: 4 },
  { kind: 'bad-page', re: /\bBad page (state|map)\b/, consoleLevel: 1 },
  // The filesystems' own alarms: corruption found, or the fs shut itself down.
  { kind: 'fs-error', re: /EXT4-fs error|EXT4-fs \(.*\): .*corrupt|XFS \(.*\): (Corruption|Metadata corruption|.*corrupt)|XFS \(.*\): .*I\/O error/i, consoleLevel: 3 },
  { kind: 'fs-shutdown', re: /XFS \(.*\): .*(shut ?down|Shutting down filesystem)|EXT4-fs \(.*\): .*shut ?down|Remounting filesystem read-only/i, consoleLevel: 3 },
  // daxpin's own sysrq-c in the crash test: a crash, on purpose.
  { kind: 'crash-trigger', re: /sysrq: Trigger a crash/, consoleLevel: 0 },
];

/**
 * Lines a splat pattern matches that are no splat: known noise, filtered as fstests'
 * `_check_dmesg_filter` does. Each says why.
 */
export const NOISE: RegExp[] = [
  // Printed by the hung-task detector when its own sysctl is changed, not a hang.
  /hung_task_timeout_secs.*disables this message/,
  // The lockdep self-test banner, printed at boot by kernels built with it.
  /lockdep: .*self-tests/i,
];

/** Which splat a kernel log line is, or null for an ordinary line. */
export function splatOf(text: string): SplatKind | null {
  if (NOISE.some((re) => re.test(text))) return null;
  return SPLATS.find((s) => s.re.test(text))?.kind ?? null;
}

export function consoleLevelOf(kind: SplatKind): number {
  return SPLATS.find((s) => s.kind === kind)!.consoleLevel;
}

/** A call trace's frames and register dumps go with the splat above them: they are no splat of their own. */
export const CALL_TRACE = /Call Trace|^\s*(\? )?[a-z_][\w.]*\+0x[0-9a-f]+\/0x[0-9a-f]+/i;

/**
 * syslog facility of a /dev/kmsg record: 0 is the kernel's own; user space writing to
 * /dev/kmsg (daxpin's case markers among them) gets LOG_USER (1) or more.
 */
export const KERNEL_FACILITY = 0;
