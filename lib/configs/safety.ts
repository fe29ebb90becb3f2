// Which block device daxpin may format. Only one the user named that is a pmem or loop
// device, and that nothing uses: not mounted in any visible namespace, not swap, not
// held by device-mapper/md, not under the root filesystem, not claimed by anyone (an
// O_EXCL open fails on a block device the kernel has given to a filesystem or holder).
// A loop device writes through to its backing store, so the same holds for everything
// it stands on, to the end of the chain: the backing block device (another loop, a
// partition, a device-mapper target and what is under it, the root disk) or the
// backing file (which no other loop device and no swap may use). There is no override.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { devString, readAllMountinfo } from '../host/mountinfo';
import { DaxpinError } from '../errors';

const unsafe = (message: string) => new DaxpinError('EUNSAFE', message);

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

/** One block device on the chain under the named device, and how it was reached. */
interface ChainDevice extends BlockDev {
  /** "loop1 → loop0 → vda": how the named device reaches this one. */
  route: string;
}

/** A regular file some loop device on the chain is backed by. */
interface ChainFile {
  path: string;
  dev: number;
  ino: number;
  /** The loop device backed by it. */
  loop: string;
  route: string;
}

interface Chain {
  devices: ChainDevice[];
  files: ChainFile[];
}

/** The loop device's backing file as the kernel names it ('' when detached). */
function loopBacking(disk: string): string {
  return readSys(`/sys/class/block/${disk}/loop/backing_file`);
}

/**
 * Everything the named device writes through to: its disk and partitions, the
 * dm/md devices under any of them, and for a loop device its backing store,
 * followed to the end. Throws `why` when a link cannot be followed.
 */
function followChain(start: BlockDev, refuse: (why: string) => never): Chain {
  const devices: ChainDevice[] = [];
  const files: ChainFile[] = [];
  const seen = new Set<string>();
  const todo: ChainDevice[] = [{ ...start, route: start.name }];
  while (todo.length > 0) {
    const cur = todo.shift() as ChainDevice;
    if (seen.has(cur.dev)) continue;
    for (const m of family(cur.disk)) {
      if (seen.has(m.dev)) continue;
      seen.add(m.dev);
      const member = { ...m, route: m.name === cur.name ? cur.route : `${cur.route} (disk ${cur.disk}: ${m.name})` };
      devices.push(member);
      for (const d of underlying(m.dev)) if (d !== m.dev) todo.push({ ...sysBlock(d), route: `${member.route} → ${sysBlock(d).name}` });
    }
    if (!/^loop\d+$/.test(cur.disk)) continue;
    const backing = loopBacking(cur.disk);
    if (backing === '') continue;
    let st: fs.Stats;
    try {
      st = fs.statSync(backing);
    } catch {
      refuse(`${cur.route} is backed by ${backing}, which daxpin cannot follow (deleted, or in another mount namespace)`);
    }
    const route = `${cur.route} → ${backing}`;
    if (st.isBlockDevice()) {
      let next: BlockDev;
      try {
        next = sysBlock(devString(st.rdev));
      } catch {
        return refuse(`${route} is unknown to /sys/dev/block`);
      }
      todo.push({ ...next, route: `${cur.route} → ${next.name}` });
    } else if (st.isFile()) {
      files.push({ path: backing, dev: st.dev, ino: st.ino, loop: cur.disk, route });
    } else {
      refuse(`${route} is neither a file nor a block device`);
    }
  }
  return { devices, files };
}

/** Every attached loop device's backing file, by "dev:ino" of the file. */
function loopsByBackingFile(): Map<string, string[]> {
  const byFile = new Map<string, string[]>();
  for (const name of fs.readdirSync('/sys/class/block')) {
    if (!/^loop\d+$/.test(name)) continue;
    const backing = loopBacking(name);
    if (backing === '') continue;
    try {
      const st = fs.statSync(backing);
      if (!st.isFile()) continue;
      const key = `${st.dev}:${st.ino}`;
      byFile.set(key, [...(byFile.get(key) ?? []), name]);
    } catch {
      // a backing file we cannot see is nobody's we could be about to share
    }
  }
  return byFile;
}

/** /proc/swaps entries: swap devices by "major:minor", swap files by "dev:ino". */
function swaps(): { name: string; blockDev: string | null; fileKey: string | null }[] {
  const out: { name: string; blockDev: string | null; fileKey: string | null }[] = [];
  for (const line of readSys('/proc/swaps').split('\n').slice(1)) {
    const name = line.split(/\s+/)[0];
    if (!name) continue;
    try {
      const st = fs.statSync(name.replace(/\\040/g, ' '));
      out.push({ name, blockDev: st.isBlockDevice() ? devString(st.rdev) : null, fileKey: st.isFile() ? `${st.dev}:${st.ino}` : null });
    } catch {
      // a swap area that is gone, or a path outside our namespace
    }
  }
  return out;
}

/**
 * Resolve `devicePath` and return the real device path if daxpin may format it;
 * otherwise throw a DaxpinError (code EUNSAFE) with a one-line reason.
 */
export async function checkScratchDevice(devicePath: string): Promise<string> {
  if (devicePath.trim() === '') throw unsafe('no device named; daxpin formats only a device named explicitly');
  let real: string;
  try {
    real = fs.realpathSync(devicePath);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw unsafe(`refusing ${devicePath}: ${code === 'ENOENT' ? 'no such file or device' : `cannot resolve it (${code})`}`);
  }
  const shown = real === devicePath ? devicePath : `${devicePath} (-> ${real})`;
  const refuse = (why: string): never => {
    throw unsafe(`refusing to format ${shown}: ${why}`);
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

  // The root filesystem, and every device underneath it, is never formatted.
  const rootDevs = new Set(underlying(devString(fs.statSync('/').dev)));
  const rootMount = readAllMountinfo().find((e) => e.mountPoint === '/' && e.source.startsWith('/dev/'));
  const rootSource = rootMount ? rdevOf(rootMount.source) : null;
  if (rootSource) for (const d of underlying(rootSource)) rootDevs.add(d);
  const rootHeld = (members: BlockDev[]) => members.some((m) => rootDevs.has(m.dev));
  if (rootHeld(family(me.disk))) refuse(`it holds the root filesystem (${rootDevs.has(dev) ? me.name : `on ${me.disk}`}); daxpin never formats it`);

  if (!FORMATTABLE.test(me.name)) refuse(`${me.name} is neither a pmem (/dev/pmemN) nor a loop (/dev/loopN) device`);
  if (me.name.startsWith('loop') && readSys(`/sys/class/block/${me.disk}/size`) === '0') {
    refuse(`${me.disk} is not attached to a backing file`);
  }
  const chain = followChain(me, refuse);
  const onChain = (d: ChainDevice) => (d.name === me.name ? d.name : d.route);
  for (const d of chain.devices) {
    if (rootDevs.has(d.dev)) refuse(`${onChain(d)}: it writes through to the root filesystem's device; daxpin never formats it`);
  }

  if (readSys(`/sys/class/block/${me.disk}/ro`) === '1') refuse(`${me.disk} is read-only`);

  const byDev = new Map(chain.devices.map((d) => [d.dev, d]));
  for (const e of readAllMountinfo()) {
    const sources = [e.source, ...[...e.superOptions.matchAll(/(?:logdev|rtdev)=([^,]+)/g)].map((m) => m[1])];
    for (const d of chain.devices) {
      const bySource = sources.some((s) => s.startsWith('/') && rdevOf(s) === d.dev);
      if (e.dev === d.dev || bySource) refuse(`${onChain(d)} is mounted at ${e.mountPoint}`);
    }
  }

  const swapAreas = swaps();
  for (const s of swapAreas) {
    const d = s.blockDev ? byDev.get(s.blockDev) : undefined;
    if (d) refuse(`${d.name === me.name ? s.name : `${d.route} (${s.name})`} is in use as swap`);
    const f = chain.files.find((x) => s.fileKey === `${x.dev}:${x.ino}`);
    if (f) refuse(`${f.route} is in use as swap`);
  }

  const chainNames = new Set(chain.devices.map((d) => d.name));
  for (const d of chain.devices) {
    let holders: string[] = [];
    try {
      holders = fs.readdirSync(`/sys/class/block/${d.name}/holders`);
    } catch {
      // a device without a holders directory has no holders
    }
    const others = holders.filter((h) => !chainNames.has(h));
    if (others.length > 0) refuse(`${onChain(d)} is held by ${others.join(', ')}`);
  }

  // Another loop device over the same file writes the same blocks (and may be mounted).
  const loopsOnFile = loopsByBackingFile();
  for (const f of chain.files) {
    const others = (loopsOnFile.get(`${f.dev}:${f.ino}`) ?? []).filter((l) => l !== f.loop);
    if (others.length > 0) refuse(`${f.route} is also the backing file of ${others.join(', ')}`);
  }

  // Last, the kernel's own word: an exclusive open fails while a filesystem, swap,
  // md or dm has claimed the device, in whatever namespace.
  for (const d of chain.devices) {
    const node = d.name === me.name ? real : null;
    let fd: number;
    try {
      fd = node !== null ? fs.openSync(node, fs.constants.O_RDONLY | fs.constants.O_EXCL) : openByDev(d.dev);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return refuse(
        code === 'EBUSY'
          ? `${node !== null ? 'the kernel reports it' : `${d.route}: the kernel reports ${d.name}`} busy (claimed by a filesystem, swap or another holder)`
          : `cannot open ${d.name} exclusively (${code})`,
      );
    }
    fs.closeSync(fd);
  }
  return real;
}

/** Opens a block device by "major:minor" with O_EXCL, through a private node when /dev has none. */
function openByDev(dev: string): number {
  const node = `/dev/${readSys(`/sys/dev/block/${dev}/uevent`).match(/^DEVNAME=(.*)$/m)?.[1] ?? ''}`;
  if (node !== '/dev/' && rdevOf(node) === dev) return fs.openSync(node, fs.constants.O_RDONLY | fs.constants.O_EXCL);
  throw Object.assign(new Error(`no /dev node for ${dev}`), { code: 'ENODEV' });
}
