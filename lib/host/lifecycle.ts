// Everything daxpin sets up on the machine (mounts, loop devices, temp dirs, child
// processes) is registered here with the action that undoes it. Actions run in
// reverse order of registration, each at most once: on normal teardown, and on
// SIGINT/SIGTERM/SIGHUP, after which the process exits 130/143/129. While anything is
// registered, daxpin owns those signals; this module is the only place that listens to
// them. Other components that must act on Ctrl-C (flush results, kill a worker or a
// guest) register an action instead of a handler of their own, and a loop that must
// stop between steps asks `stopRequested()`.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BlockingCall, MNT_DETACH, isSystemError, native } from '../native';
import { readMountinfo } from './mountinfo';

export type TeardownAction = () => void | Promise<void>;

interface Entry {
  name: string;
  fn: TeardownAction;
  /** Processes go first: a worker with files open would make every unmount busy. */
  early: boolean;
}

export interface TeardownFailure {
  name: string;
  error: string;
}

const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };
/** An action that has not finished by then is abandoned when a signal tears down. */
const SIGNAL_ACTION_TIMEOUT_MS = 15_000;

const entries: Entry[] = [];
let signalsInstalled = false;
let shuttingDown = false;
let stopSignal: NodeJS.Signals | null = null;

/** The signal that asked daxpin to stop (any of INT, TERM, HUP), or null. */
export function stopRequested(): NodeJS.Signals | null {
  return stopSignal;
}

/** The exit status after `signal`: 128 + its number. */
export function signalExitCode(signal: NodeJS.Signals): number {
  return SIGNAL_EXIT[signal] ?? 128 + (os.constants.signals[signal] ?? 0);
}

function say(line: string): void {
  try {
    process.stderr.write(`${line}\n`);
  } catch {
    // stderr gone (closed terminal): cleaning up matters more than saying so
  }
}

function onSignal(signal: NodeJS.Signals): void {
  if (shuttingDown) return;
  shuttingDown = true;
  stopSignal = signal;
  say(`daxpin: ${signal}: cleaning up`);
  teardownAll(SIGNAL_ACTION_TIMEOUT_MS)
    .then((failures) => {
      for (const f of failures) say(`daxpin: cleanup of ${f.name} failed: ${f.error}`);
    })
    .catch(() => undefined)
    .finally(() => process.exit(SIGNAL_EXIT[signal]));
}

function installSignals(): void {
  if (signalsInstalled) return;
  signalsInstalled = true;
  for (const signal of Object.keys(SIGNAL_EXIT)) process.on(signal as NodeJS.Signals, onSignal);
}

function uninstallSignals(): void {
  if (!signalsInstalled || shuttingDown) return;
  signalsInstalled = false;
  for (const signal of Object.keys(SIGNAL_EXIT)) process.removeListener(signal as NodeJS.Signals, onSignal);
}

/**
 * Register an undo action; the returned function removes it without running it.
 * `early`: run before every ordinary action (a child process to kill, whose open
 * files or held requests the other actions wait for).
 */
export function register(name: string, fn: TeardownAction, opts: { early?: boolean } = {}): () => void {
  const entry: Entry = { name, fn, early: opts.early ?? false };
  entries.push(entry);
  installSignals();
  return () => {
    const i = entries.indexOf(entry);
    if (i >= 0) entries.splice(i, 1);
    if (entries.length === 0) uninstallSignals();
  };
}

/** Undo actions their owner took out of the registry and is running now. */
const inFlight = new Set<Promise<unknown>>();

/**
 * Runs an undo action its owner has just unregistered (a normal teardown). A signal
 * arriving meanwhile waits for it before the process exits, so an unmount or a loop
 * detach is never cut off half way.
 */
export async function runOwned<T>(fn: () => T | Promise<T>): Promise<T> {
  const run = Promise.resolve().then(fn);
  inFlight.add(run);
  try {
    return await run;
  } finally {
    inFlight.delete(run);
  }
}

/** Names of the registered actions, oldest first. */
export function registered(): string[] {
  return entries.map((e) => e.name);
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function runOne(entry: Entry, timeoutMs: number | undefined): Promise<void> {
  const run = Promise.resolve().then(entry.fn);
  if (timeoutMs === undefined) return run;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still running after ${timeoutMs} ms; abandoned`)), timeoutMs);
  });
  try {
    await Promise.race([run, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Run every registered action, early ones first, each group newest first; never throws, returns what failed. */
export async function teardownAll(timeoutMs?: number): Promise<TeardownFailure[]> {
  const failures: TeardownFailure[] = [];
  /** Set once a wait for what owners are undoing has timed out: they are not waited for again. */
  let ownersAbandoned = false;
  /** Waits for what owners are undoing now. */
  const owned = async () => {
    if (inFlight.size === 0 || ownersAbandoned) return;
    try {
      await runOne({ name: 'owned', fn: () => Promise.allSettled([...inFlight]).then(() => undefined), early: false }, timeoutMs);
    } catch (err) {
      ownersAbandoned = true;
      failures.push({ name: 'owned', error: message(err) });
    }
  };
  // An undo its owner is running now is newer than every registered one (owners undo
  // newest first): it finishes first, so an rmdir never races the unmount before it.
  await owned();
  while (entries.length > 0) {
    const early = entries.map((e) => e.early).lastIndexOf(true);
    // Owners go on undoing while this runs (a run loop that saw the signal tears its
    // config down too): what one took out of the registry meanwhile is newer than every
    // entry left, so it finishes before the next ordinary one starts (the rmdir of a
    // mount point waits for the owner's unmount of it). Checked again after each wait:
    // an owner may start its next undo while this one waited.
    if (early < 0 && inFlight.size > 0 && !ownersAbandoned) {
      await owned();
      continue;
    }
    const entry = early >= 0 ? entries.splice(early, 1)[0] : (entries.pop() as Entry);
    try {
      await runOne(entry, timeoutMs);
    } catch (err) {
      failures.push({ name: entry.name, error: message(err) });
    }
  }
  // What owners started undoing meanwhile finishes before a signal's exit.
  await owned();
  uninstallSignals();
  return failures;
}

/** Run `fn` once however often the returned function is called; later calls get the first call's promise. */
export function once<T>(fn: () => Promise<T>): () => Promise<T> {
  let result: Promise<T> | undefined;
  return () => (result ??= fn());
}

/**
 * The result of a blocking native call. The addon does not keep the event loop alive
 * for a call stuck in the kernel, so a timer is held until it settles (or `timeoutMs`
 * passes, when the call is abandoned with an error; its thread stays behind).
 */
export async function settled(call: BlockingCall, what: string, timeoutMs?: number): Promise<{ ret: number; aux: number }> {
  let timer: NodeJS.Timeout | undefined;
  const started = Date.now();
  const held = new Promise<never>((_, reject) => {
    timer = setInterval(() => {
      if (timeoutMs !== undefined && Date.now() - started >= timeoutMs) reject(new Error(`${what} still blocked after ${timeoutMs} ms`));
    }, 50);
  });
  try {
    return await Promise.race([call.promise, held]);
  } finally {
    clearInterval(timer);
  }
}

/** How long daxpin waits for an unmount before it gives up on it. */
export const UMOUNT_TIMEOUT_MS = 30_000;

const FUSECTL = '/sys/fs/fuse/connections';

/**
 * Runs `fn` with a fusectl mount: the system's, or else a private one made for the
 * call and unmounted after it (a shared mount point would be another daxpin's to
 * unmount while it still writes there).
 */
async function withFusectl<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  if (readMountinfo().some((e) => e.mountPoint === FUSECTL && e.fsType === 'fusectl')) return fn(FUSECTL);
  // The pid in the name lets `daxpin cleanup` tell a dead process's mount from a live one's.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `daxpin-fusectl-${process.pid}-`));
  try {
    native.mount('fusectl', dir, 'fusectl', 0, '');
    try {
      return await fn(dir);
    } finally {
      await settled(native.startUmount(dir, 0), `umount ${dir}`, UMOUNT_TIMEOUT_MS);
    }
  } finally {
    fs.rmdirSync(dir);
  }
}

/** The fusectl name of a FUSE mount's connection: the superblock's kernel dev_t, (major << 20) | minor. */
export function fuseConnectionId(dev: string): number {
  const [major, minor] = dev.split(':').map(Number);
  return major * 2 ** 20 + minor;
}

/**
 * A FUSE server killed mid-request leaves the mount's callers in D state until the
 * connection is aborted. Abort every FUSE connection mounted at `mountPoint` (via
 * fusectl) and lazily unmount it.
 */
export async function abortFuseConnectionsFor(mountPoint: string): Promise<void> {
  const fuseMounts = readMountinfo()
    .filter((e) => e.mountPoint === mountPoint && (e.fsType === 'fuse' || e.fsType.startsWith('fuse.') || e.fsType === 'fuseblk'))
    .reverse();
  if (fuseMounts.length === 0) return;
  await withFusectl(async (fusectl) => {
    for (const m of fuseMounts) {
      try {
        fs.writeFileSync(`${fusectl}/${fuseConnectionId(m.dev)}/abort`, '1');
      } catch (err) {
        // ENOENT: the connection is already gone
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
  });
  for (let i = 0; i < fuseMounts.length; i++) {
    try {
      await settled(native.startUmount(mountPoint, MNT_DETACH), `umount -l ${mountPoint}`, UMOUNT_TIMEOUT_MS);
    } catch (err) {
      // EINVAL: no longer mounted (the FUSE server unmounted it meanwhile)
      if (!isSystemError(err) || err.code !== 'EINVAL') throw err;
    }
  }
}
