// How a boot ended and what the runner does about it: one pure function of what the
// boot produced (qemu's result, the host's stall timer, what the guest recorded, the
// in-flight marker), so every way a boot can end is decided, worded and tested here.

/** What one boot produced, as the runner saw it. */
export interface BootFacts {
  boot: number;
  maxBoots: number;
  /** The guest command's exit status; null when it never finished. */
  exitCode: number | null;
  panicked: boolean;
  /** qemu's idle watchdog killed it (no console output, no result). */
  wedged: boolean;
  /** The host's stall timer stopped it (no new result). */
  stalled: boolean;
  timedOut: boolean;
  /** What the guest's init could not set up, if anything. */
  setupError: string | null;
  commandStarted: boolean;
  /** Case lines this boot wrote. */
  cases: number;
  /** This boot wrote a config line. */
  configs: boolean;
  /** The in-flight marker as the guest left it (`<config>/<case>` or `<config>/`). */
  inflight: string | null;
  /** The in-flight case, when it is planned and has no record. */
  inflightCase: string | null;
  /** The config being set up, when it is known and has no record. */
  inflightConfig: string | null;
  /** Boots right before this one whose kernel died before the guest command started. */
  deadBeforeCommand: number;
  idleTimeoutMs: number;
  stallTimeoutMs: number;
  /** The guest's last own output line, for messages. */
  lastGuestMessage: string | null;
  lastConsoleLine: string;
  /** The boot's console log file, named in messages. */
  console: string;
}

export type BootAction =
  /** The kernel is given up on. */
  | { kind: 'stop'; error: string }
  /** The guest ran its plan; what it did not record is not run. */
  | { kind: 'finished'; note: string | null }
  /** The in-flight case is recorded as `status` with `error`; then a fresh boot. */
  | { kind: 'case'; key: string; status: 'crashed' | 'error'; error: string; what: string }
  /** The config being set up gets a record with `error`, its cases are skipped; then a fresh boot. */
  | { kind: 'config'; config: string; error: string; note: string }
  /** The kernel died in its own boot: one fresh boot more. */
  | { kind: 'retry'; note: string }
  /** Died outside a case: a fresh boot continues. */
  | { kind: 'resume'; note: string };

export interface BootAttribution {
  /** How it ended, in a word or two: 'exit 0', 'panic', 'wedged', 'stalled', ... */
  ended: string;
  action: BootAction;
}

function ended(f: BootFacts): string {
  if (f.exitCode !== null) return `exit ${f.exitCode}`;
  if (f.panicked) return 'panic';
  if (f.wedged) return 'wedged';
  if (f.stalled) return 'stalled';
  if (f.timedOut) return 'timed out';
  if (f.setupError !== null) return 'init failed';
  return 'guest died';
}

/** What cut the guest short, as a phrase for records and messages. */
function cutShort(f: BootFacts): string {
  const said = f.lastGuestMessage ? `: ${f.lastGuestMessage}` : '';
  if (f.exitCode !== null) return `the guest's daxpin exited with status ${f.exitCode}${said}`;
  if (f.panicked) return `kernel panic (boot ${f.boot})`;
  if (f.wedged) return `guest wedged: no console output and no result for ${Math.round(f.idleTimeoutMs / 1000)} s (boot ${f.boot})`;
  if (f.stalled) return `guest stalled: no new result for ${Math.round(f.stallTimeoutMs / 1000)} s (boot ${f.boot})`;
  if (f.timedOut) return `guest timed out (boot ${f.boot})`;
  return `guest ended without finishing (qemu exited; boot ${f.boot})`;
}

export function attributeBoot(f: BootFacts): BootAttribution {
  return { ended: ended(f), action: action(f) };
}

function action(f: BootFacts): BootAction {
  const consoleRef = `(console: ${f.console})`;
  const finished = f.exitCode !== null;
  if (f.setupError !== null) return { kind: 'stop', error: `the guest's init could not ${f.setupError} ${consoleRef}` };
  if (finished && (f.exitCode === 0 || f.exitCode === 1)) {
    if (f.cases === 0 && !f.configs) {
      // The guest "ran" without a single record: node could not load daxpin, or the like.
      const said = f.lastGuestMessage ? `: ${f.lastGuestMessage}` : '';
      return { kind: 'stop', error: `the guest command exited with status ${f.exitCode} without running a case${said} ${consoleRef}` };
    }
    return { kind: 'finished', note: f.panicked ? `the kernel panicked after the guest command finished ${consoleRef}` : null };
  }
  if (f.exitCode === 130) return { kind: 'stop', error: 'the guest run was interrupted' };

  // The guest did not finish its plan: a kernel panic, a wedge, or daxpin itself died.
  const what = cutShort(f);
  if (f.inflightCase !== null) {
    return { kind: 'case', key: f.inflightCase, status: finished ? 'error' : 'crashed', error: `${what} during this case`, what };
  }
  if (f.inflightConfig !== null) {
    return {
      kind: 'config',
      config: f.inflightConfig,
      error: `${what} while the guest set the config up; last console line: ${f.lastConsoleLine}`,
      note: `config ${f.inflightConfig}: ${what} while setting it up; its cases are not run`,
    };
  }
  if (!finished && !f.commandStarted && f.deadBeforeCommand === 0 && f.boot < f.maxBoots) {
    // The kernel died in its own boot, before anything of daxpin ran (seen with 7.3 under
    // TCG booted via PVH: an int3 Oops while the kernel patches its text; bench/README.md).
    // One fresh boot more; a kernel that cannot boot twice in a row is given up on.
    return { kind: 'retry', note: `${what} before the guest command started; trying one fresh boot ${consoleRef}` };
  }
  if (f.cases === 0) {
    if (finished) return { kind: 'stop', error: `${what}, before its first case ${consoleRef}` };
    const again = f.deadBeforeCommand > 0 ? ` (boot ${f.boot - 1} died the same way)` : '';
    const where = f.commandStarted ? 'during set-up' : `the guest command never started${again}`;
    return { kind: 'stop', error: `${what} before the first case: ${where} ${consoleRef}` };
  }
  return { kind: 'resume', note: `${what} outside a case (after ${f.inflight ?? 'no case'}); continuing in a fresh boot` };
}
