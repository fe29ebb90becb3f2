// Kernel task state of a thread: the letter from /proc/<pid>/task/<tid>/stat
// ('D' uninterruptible, 'S' interruptible sleep, ...) and its kernel stack.
import fs from 'node:fs';

export interface TaskState {
  tid: number;
  state: string | null;
  /** Kernel stack frames (function+offset), when /proc exposes them (root). */
  stack: string[] | null;
  wchan: string | null;
}

export function parseStatState(stat: string): string | null {
  // comm may contain spaces and parentheses: the state follows the last ')'.
  const i = stat.lastIndexOf(')');
  return i < 0 ? null : stat.slice(i + 2, i + 3) || null;
}

function readOrNull(p: string): string | null {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return null;
  }
}

export function parseStack(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.replace(/^\[<[0-9a-f]+>\]\s*/, '').trim())
    .filter((l) => l.length > 0);
}

export function readTaskState(pid: number, tid: number): TaskState {
  const base = `/proc/${pid}/task/${tid}`;
  const stat = readOrNull(`${base}/stat`);
  const stack = readOrNull(`${base}/stack`);
  const wchan = readOrNull(`${base}/wchan`);
  return { tid, state: stat ? parseStatState(stat) : null, stack: stack ? parseStack(stack) : null, wchan: wchan || null };
}

/** Every thread of a process, for a worker that stopped answering. */
export function readAllTasks(pid: number): TaskState[] {
  let tids: string[];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  return tids.map((t) => readTaskState(pid, Number(t)));
}

/**
 * Whether a process has been killed but not yet exited: its main thread is a zombie
 * while another thread is still in the kernel, or SIGKILL is pending on it.
 */
export function parseDying(status: string): boolean {
  if (/^State:\s+Z/m.test(status)) return true;
  const pending = (name: string) => BigInt(`0x${new RegExp(`^${name}:\\s*([0-9a-f]+)`, 'm').exec(status)?.[1] ?? '0'}`);
  return ((pending('SigPnd') | pending('ShdPnd')) & (1n << 8n)) !== 0n;
}

export function isDying(pid: number): boolean {
  const status = readOrNull(`/proc/${pid}/status`);
  return status !== null && parseDying(status);
}

/** Processes with an open file, cwd, root or mapping under `dir`: what keeps a mount busy. */
export function holdersUnder(dir: string): string[] {
  const out: string[] = [];
  const under = (p: string) => p === dir || p.startsWith(`${dir}/`);
  for (const pid of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    const seen: string[] = [];
    try {
      // A kernel thread (no exe) holds no file: one readlink instead of a dozen reads
      // for each of them (a guest has mostly kernel threads; under TCG each read counts).
      if (readlinkOrNull(`/proc/${pid}/exe`) === null) continue;
      for (const link of ['cwd', 'root']) {
        const p = fs.readlinkSync(`/proc/${pid}/${link}`);
        if (under(p)) seen.push(`${link} ${p}`);
      }
      for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
        // An fd can close between the listing and the readlink (the listing's own, for one).
        const p = readlinkOrNull(`/proc/${pid}/fd/${fd}`);
        if (p !== null && under(p.replace(/ \(deleted\)$/, ''))) seen.push(`fd ${fd} ${p}`);
      }
      for (const line of fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
        const p = line.split(/\s+/).slice(5).join(' ');
        if (p && under(p.replace(/ \(deleted\)$/, ''))) seen.push(`map ${p}`);
      }
    } catch {
      // the process exited meanwhile
    }
    if (seen.length > 0) out.push(`${pid}: ${[...new Set(seen)].join(', ')}`);
  }
  return out;
}

function readlinkOrNull(p: string): string | null {
  try {
    return fs.readlinkSync(p);
  } catch {
    return null;
  }
}
