// /proc/<pid>/mountinfo, parsed once per question: which mounts use a device, which
// mount holds a directory. Fields are octal-escaped by the kernel (\040 for a space).
import * as fs from 'node:fs';

export interface MountEntry {
  mountId: number;
  /** "major:minor" of the mounted filesystem's st_dev. */
  dev: string;
  mountPoint: string;
  mountOptions: string;
  fsType: string;
  source: string;
  superOptions: string;
}

function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export function parseMountinfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const [left, right] = line.split(' - ');
    if (right === undefined) continue;
    const l = left.split(' ');
    const r = right.split(' ');
    entries.push({
      mountId: Number(l[0]),
      dev: l[2],
      mountPoint: unescape(l[4]),
      mountOptions: l[5],
      fsType: r[0],
      source: unescape(r[1]),
      superOptions: r[2] ?? '',
    });
  }
  return entries;
}

export function readMountinfo(pid: number | 'self' = 'self'): MountEntry[] {
  return parseMountinfo(fs.readFileSync(`/proc/${pid}/mountinfo`, 'utf8'));
}

/**
 * Mount tables of every mount namespace visible in /proc (one process per namespace),
 * so a device mounted only inside a container is seen too.
 */
export function readAllMountinfo(): MountEntry[] {
  const seen = new Set<string>();
  const entries: MountEntry[] = [];
  const pids = ['self', ...fs.readdirSync('/proc').filter((name) => /^\d+$/.test(name))];
  for (const pid of pids) {
    try {
      const ns = fs.readlinkSync(`/proc/${pid}/ns/mnt`);
      if (seen.has(ns)) continue;
      seen.add(ns);
      entries.push(...parseMountinfo(fs.readFileSync(`/proc/${pid}/mountinfo`, 'utf8')));
    } catch {
      // the process exited, or its namespace is not ours to read: nothing to see
    }
  }
  return entries;
}

export function devString(dev: number | bigint): string {
  const d = BigInt(dev);
  const major = ((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn);
  const minor = (d & 0xffn) | ((d >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}

/** The mount a path lives on: the last-mounted entry with the path's st_dev whose mount point is a prefix of it. */
export function mountOf(realPath: string, entries: MountEntry[] = readMountinfo()): MountEntry | undefined {
  const dev = devString(fs.statSync(realPath).dev);
  let best: MountEntry | undefined;
  for (const e of entries) {
    if (e.dev !== dev) continue;
    const inside = realPath === e.mountPoint || e.mountPoint === '/' || realPath.startsWith(`${e.mountPoint}/`);
    if (inside && (!best || e.mountPoint.length >= best.mountPoint.length)) best = e;
  }
  return best;
}
