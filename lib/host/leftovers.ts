// What a daxpin killed with SIGKILL (or a crashed machine's reboot into the same
// /tmp) left behind, found by daxpin's own markers only: its work directory is named
// `daxpin-<pid>-*` (loop images, mount points and FUSE mounts live there), a private
// fusectl mount `daxpin-fusectl-<pid>-*` (host/lifecycle.ts), and trace instances `instances/daxpin-<pid>`.
// Something counts as left over only when the process named by its marker is dead;
// another daxpin still running keeps everything it has.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MNT_DETACH, native } from '../native';
import { abortFuseConnectionsFor, settled } from './lifecycle';
import { readMountinfo } from './mountinfo';

/** The prefix of a work directory of process `pid`. */
export function workDirPrefix(pid: number = process.pid): string {
  return `daxpin-${pid}-`;
}

/** The owner of a path inside (or at) a daxpin-marked directory, or null for anything else. */
export function markerOwner(p: string): number | null {
  const m = /(?:^|\/)daxpin-(?:fusectl-)?(\d+)-[^/]+(?:\/|$)/.exec(p);
  return m ? Number(m[1]) : null;
}

/** The marked directory a path lies in: `/tmp/daxpin-123-abc/mnt-x` → `/tmp/daxpin-123-abc`. */
export function markedDir(p: string): string | null {
  const m = /^(.*?(?:^|\/)daxpin-(?:fusectl-)?\d+-[^/]+)(?:\/|$)/.exec(p);
  return m ? m[1] : null;
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export type LeftoverKind = 'process' | 'fuse' | 'mount' | 'loop' | 'trace' | 'dir';

export interface Leftover {
  kind: LeftoverKind;
  /** A mount point, loop device, trace instance or directory; a pid for a process. */
  target: string;
  /** The dead daxpin process whose marker it carries. */
  owner: number;
  /** One line for the person reading. */
  what: string;
}

const TRACEFS_CANDIDATES = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'];
const isDead = (pid: number | null): pid is number => pid !== null && pid !== process.pid && !pidAlive(pid);

function readOr(file: string, fallback: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return fallback;
  }
}

/** Workers and FUSE peers still alive whose mount lies in a dead daxpin's work dir (stuck, or orphaned). */
function orphanProcesses(): Leftover[] {
  const out: Leftover[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = readOr(`/proc/${entry}/cmdline`, '').split('\0');
    if (!argv.some((a) => /engine\/(worker|peer-main)\.js$/.test(a))) continue;
    const owner = markerOwner(argv[argv.length - 2] ?? '') ?? markerOwner(argv.find((a) => markerOwner(a) !== null) ?? '');
    if (isDead(owner)) out.push({ kind: 'process', target: entry, owner, what: `process ${entry} (${argv.filter(Boolean).slice(1, 3).join(' ')})` });
  }
  return out;
}

function mounts(): Leftover[] {
  return readMountinfo()
    .map((e) => ({ e, owner: markerOwner(e.mountPoint) }))
    .filter((x): x is { e: (typeof x)['e']; owner: number } => isDead(x.owner))
    .map(({ e, owner }) => {
      const fuse = e.fsType === 'fuse' || e.fsType.startsWith('fuse.');
      return { kind: fuse ? 'fuse' : 'mount', target: e.mountPoint, owner, what: `${e.fsType} mounted at ${e.mountPoint}` } as Leftover;
    });
}

function loops(): Leftover[] {
  const out: Leftover[] = [];
  for (const name of fs.readdirSync('/sys/class/block')) {
    if (!/^loop\d+$/.test(name)) continue;
    const backing = readOr(`/sys/class/block/${name}/loop/backing_file`, '').trim();
    const owner = markerOwner(backing);
    if (isDead(owner)) out.push({ kind: 'loop', target: `/dev/${name}`, owner, what: `/dev/${name} over ${backing}` });
  }
  return out;
}

/** Trace instances `daxpin-<pid>` of dead processes (workers make them, named by their own pid). */
export function staleTraceInstances(): Leftover[] {
  const out: Leftover[] = [];
  // The standard place only: from 6.17 on, reaching tracefs through debugfs logs a
  // deprecation NOTICE that would pass for the kernel's own words in a case's log
  // (daxpin makes its instances at the standard place, see engine/pmd.ts).
  for (const tracefs of TRACEFS_CANDIDATES.slice(0, 1)) {
    let names: string[];
    try {
      names = fs.readdirSync(`${tracefs}/instances`);
    } catch {
      continue;
    }
    for (const name of names) {
      const m = /^daxpin-(\d+)$/.exec(name);
      const owner = m ? Number(m[1]) : null;
      if (isDead(owner)) out.push({ kind: 'trace', target: `${tracefs}/instances/${name}`, owner, what: `trace instance ${tracefs}/instances/${name}` });
    }
  }
  return out;
}

function dirs(): Leftover[] {
  const tmp = os.tmpdir();
  let names: string[] = [];
  try {
    names = fs.readdirSync(tmp);
  } catch {
    return [];
  }
  return names
    .map((name) => ({ name, owner: markerOwner(name) }))
    .filter((x): x is { name: string; owner: number } => isDead(x.owner))
    .map(({ name, owner }) => ({ kind: 'dir', target: path.join(tmp, name), owner, what: `directory ${path.join(tmp, name)}` }));
}

/** Everything dead daxpin processes left, in the order it must be undone. */
export function findLeftovers(): Leftover[] {
  return [...orphanProcesses(), ...mounts().reverse(), ...loops(), ...staleTraceInstances(), ...dirs()];
}

/** Undoes leftovers in order; returns what could not be undone, one line each. */
export async function removeLeftovers(list: Leftover[], say: (line: string) => void): Promise<string[]> {
  const failed: string[] = [];
  for (const l of list) {
    try {
      await undo(l);
      say(`removed ${l.what} (left by pid ${l.owner})`);
    } catch (err) {
      failed.push(`${l.what}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
    }
  }
  return failed;
}

async function undo(l: Leftover): Promise<void> {
  switch (l.kind) {
    case 'process':
      process.kill(Number(l.target), 'SIGKILL');
      return;
    case 'fuse':
      // Aborting the connection drops the pins a dead worker's requests still hold.
      await abortFuseConnectionsFor(l.target);
      return;
    case 'mount':
      await settled(native.startUmount(l.target, MNT_DETACH), `umount -l ${l.target}`, 30_000);
      return;
    case 'loop':
      execFileSync('losetup', ['-d', l.target], { stdio: ['ignore', 'ignore', 'pipe'] });
      return;
    case 'trace':
      fs.rmdirSync(l.target);
      return;
    case 'dir':
      // Never walk into something still mounted there.
      if (readMountinfo().some((e) => e.mountPoint === l.target || e.mountPoint.startsWith(`${l.target}/`))) {
        throw new Error('something is still mounted in it');
      }
      fs.rmSync(l.target, { recursive: true, force: true });
  }
}
