// What a daxpin run left on the machine under a directory: mounts, loop devices,
// processes; and the cleanup a SIGKILLed run cannot do for itself.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { readMountinfo } from '../../lib/host/mountinfo';
import { abortFuseConnectionsFor, settled } from '../../lib/host/lifecycle';
import { MNT_DETACH, native } from '../../lib/native';

export interface Leftovers {
  mounts: string[];
  loops: string[];
  processes: string[];
}

export function mountsUnder(dir: string): { mountPoint: string; fsType: string }[] {
  return readMountinfo()
    .filter((e) => e.mountPoint === dir || e.mountPoint.startsWith(`${dir}/`))
    .map((e) => ({ mountPoint: e.mountPoint, fsType: e.fsType }));
}

/** Loop devices whose backing file is under dir, as "/dev/loopN". */
export function loopsUnder(dir: string): string[] {
  return execFileSync('losetup', ['-a'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes(dir))
    .map((l) => l.split(':')[0]);
}

/** Processes (other than this one) whose command line mentions dir: workers and FUSE peers name their mount. */
export function processesUnder(dir: string): { pid: number; cmdline: string }[] {
  const out: { pid: number; cmdline: string }[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let cmdline: string;
    try {
      cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim();
    } catch {
      continue;
    }
    if (cmdline.includes(dir)) out.push({ pid: Number(entry), cmdline });
  }
  return out;
}

export function leftovers(dir: string): Leftovers {
  return {
    mounts: mountsUnder(dir).map((m) => `${m.fsType} ${m.mountPoint}`),
    loops: loopsUnder(dir),
    processes: processesUnder(dir).map((p) => `${p.pid} ${p.cmdline}`),
  };
}

export const NOTHING_LEFT: Leftovers = { mounts: [], loops: [], processes: [] };

/** Child pids of a process (all its threads' children). */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  let tids: string[] = [];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      out.push(...fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number));
    } catch {
      // the thread is gone
    }
  }
  return out;
}

export function cmdlineOf(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

/** The daxpin worker among a run's children, or null. */
export function workerOf(daxpinPid: number): number | null {
  return childrenOf(daxpinPid).find((p) => cmdlineOf(p).includes('engine/worker.js')) ?? null;
}

/**
 * What a process killed with SIGKILL cannot undo itself: its FUSE connections
 * (aborted, which drops held pins), mounts (detached lazily), loop devices, and
 * any worker or peer still alive. Returns what it did.
 */
export async function cleanUpAfterKill(dir: string): Promise<string[]> {
  const done: string[] = [];
  for (const p of processesUnder(dir)) {
    try {
      process.kill(p.pid, 'SIGKILL');
      done.push(`kill ${p.pid}`);
    } catch {
      // gone meanwhile
    }
  }
  for (const m of mountsUnder(dir).reverse()) {
    if (m.fsType === 'fuse' || m.fsType.startsWith('fuse.')) {
      await abortFuseConnectionsFor(m.mountPoint);
      done.push(`abort+umount -l ${m.mountPoint}`);
    } else {
      await settled(native.startUmount(m.mountPoint, MNT_DETACH), `umount -l ${m.mountPoint}`, 10_000).catch(() => undefined);
      done.push(`umount -l ${m.mountPoint}`);
    }
  }
  for (const loop of loopsUnder(dir)) {
    execFileSync('losetup', ['-d', loop]);
    done.push(`losetup -d ${loop}`);
  }
  return done;
}
