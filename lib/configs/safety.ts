// Which block device daxpin may format. Only one the user named that is a pmem or loop
// device, and that nothing uses: not mounted in any visible namespace, not swap, not
// held by device-mapper/md, not under the root filesystem, not claimed by anyone (an
// O_EXCL open fails on a block device the kernel has given to a filesystem or holder).
// There is no override.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { devString, readAllMountinfo } from '../host/mountinfo';

export class SafetyError extends Error {
  readonly exitCode = 2;
  readonly code = 'EUNSAFE';

  constructor(message: string) {
    super(`daxpin: ${message}`);
    this.name = 'SafetyError';
  }
}

/** Kernel names daxpin formats: pmem namespaces (fsdax, or sector mode `pmemNs`) and loop devices, or their partitions. */
const FORMATTABLE = /^(pmem\d+s?|loop\d+)(p\d+)?$/;

interface BlockDev {
  /** Kernel name, e.g. pmem0, loop3, loop3p1. */
  name: string;
  /** "major:minor". */
  dev: string;
  /** The whole disk's kernel name (itself when not a partition). */
  disk: string;
}

function sysBlock(dev: string): BlockDev {
  const sysPath = fs.realpathSync(`/sys/dev/block/${dev}`);
  const name = path.basename(sysPath);
  const isPartition = fs.existsSync(path.join(sysPath, 'partition'));
  return { name, dev, disk: isPartition ? path.basename(path.dirname(sysPath)) : name };
}

function readSys(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return '';
  }
}

/** The disk and all its partitions: using any of them is using the disk. */
function family(disk: string): BlockDev[] {
  const diskDir = `/sys/class/block/${disk}`;
  const members: BlockDev[] = [{ name: disk, dev: readSys(`${diskDir}/dev`), disk }];
  for (const entry of fs.readdirSync(diskDir)) {
    if (fs.existsSync(path.join(diskDir, entry, 'partition'))) {
      members.push({ name: entry, dev: readSys(path.join(diskDir, entry, 'dev')), disk });
    }
  }
  return members;
}

/** Block devices underneath a device (dm/md slaves, recursively), the device included. */
function underlying(dev: string): string[] {
  const seen = new Set<string>([dev]);
  const todo = [dev];
  while (todo.length > 0) {
    const cur = todo.pop() as string;
    let slaves: string[] = [];
    try {
      slaves = fs.readdirSync(`/sys/dev/block/${cur}/slaves`);
    } catch {
      continue;
    }
    for (const slave of slaves) {
      const d = readSys(`/sys/class/block/${slave}/dev`);
      if (d && !seen.has(d)) {
        seen.add(d);
        todo.push(d);
      }
    }
  }
  return [...seen];
}

function rdevOf(p: string): string | null {
  try {
    const st = fs.statSync(p);
    return st.isBlockDevice() ? devString(st.rdev) : null;
  } catch {
    return null;
  }
}

function kindOf(st: fs.Stats): string {
  if (st.isFile()) return 'a regular file';
  if (st.isDirectory()) return 'a directory';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  return 'not a block device';
}

/**
 * Resolve `devicePath` and return the real device path if daxpin may format it;
 * otherwise throw a SafetyError with a one-line reason.
 */
export async function checkScratchDevice(devicePath: string): Promise<string> {
  if (devicePath.trim() === '') throw new SafetyError('no device named; daxpin formats only a device named explicitly');
  let real: string;
  try {
    real = fs.realpathSync(devicePath);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SafetyError(`refusing ${devicePath}: ${code === 'ENOENT' ? 'no such file or device' : `cannot resolve it (${code})`}`);
  }
  const shown = real === devicePath ? devicePath : `${devicePath} (-> ${real})`;
  const refuse = (why: string): never => {
    throw new SafetyError(`refusing to format ${shown}: ${why}`);
  };

  const st = fs.statSync(real);
  if (!st.isBlockDevice()) refuse(`it is ${kindOf(st)}, not a pmem or loop block device`);
  const dev = devString(st.rdev);
  let me: BlockDev;
  try {
    me = sysBlock(dev);
  } catch {
    return refuse(`block device ${dev} is unknown to /sys/dev/block`);
  }
  const members = family(me.disk);
  const memberDevs = new Set(members.map((m) => m.dev));

  // The root filesystem, and every device underneath it, is never formatted.
  const rootDevs = new Set(underlying(devString(fs.statSync('/').dev)));
  const rootMount = readAllMountinfo().find((e) => e.mountPoint === '/' && e.source.startsWith('/dev/'));
  const rootSource = rootMount ? rdevOf(rootMount.source) : null;
  if (rootSource) for (const d of underlying(rootSource)) rootDevs.add(d);
  for (const d of rootDevs) {
    if (memberDevs.has(d)) refuse(`it holds the root filesystem (${d === dev ? me.name : `on ${me.disk}`}); daxpin never formats it`);
  }

  if (!FORMATTABLE.test(me.name)) refuse(`${me.name} is neither a pmem (/dev/pmemN) nor a loop (/dev/loopN) device`);
  if (me.name.startsWith('loop') && readSys(`/sys/class/block/${me.disk}/size`) === '0') {
    refuse(`${me.disk} is not attached to a backing file`);
  }

  for (const e of readAllMountinfo()) {
    const sources = [e.source, ...[...e.superOptions.matchAll(/(?:logdev|rtdev)=([^,]+)/g)].map((m) => m[1])];
    for (const member of members) {
      const bySource = sources.some((s) => s.startsWith('/') && rdevOf(s) === member.dev);
      if (e.dev === member.dev || bySource) refuse(`${member.name} is mounted at ${e.mountPoint}`);
    }
  }

  for (const line of readSys('/proc/swaps').split('\n').slice(1)) {
    const swap = line.split(/\s+/)[0];
    const swapDev = swap ? rdevOf(swap) : null;
    if (swapDev && memberDevs.has(swapDev)) refuse(`${swap} is in use as swap`);
  }

  for (const member of members) {
    let holders: string[] = [];
    try {
      holders = fs.readdirSync(`/sys/class/block/${member.name}/holders`);
    } catch {
      // a device without a holders directory has no holders
    }
    if (holders.length > 0) refuse(`${member.name} is held by ${holders.join(', ')}`);
  }

  // Last, the kernel's own word: an exclusive open fails while a filesystem, swap,
  // md or dm has claimed the device, in whatever namespace.
  let fd: number;
  try {
    fd = fs.openSync(real, fs.constants.O_RDONLY | fs.constants.O_EXCL);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return refuse(code === 'EBUSY' ? 'the kernel reports it busy (claimed by a filesystem, swap or another holder)' : `cannot open it exclusively (${code})`);
  }
  fs.closeSync(fd);
  return real;
}
