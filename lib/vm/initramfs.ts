// The guest's initramfs: busybox-static, the kernel's own modules for 9p, pmem and the
// filesystems daxpin tests, and an /init that turns the host's root (shared read-only
// over 9p, with a tmpfs overlay) into the guest's root and runs one command in it.
// Built once per kernel and inputs, cached as `initramfs/<release>-<hash>.cpio.gz`.

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { cacheRoot, ensureDir, exists, storeVersion, versionsOf } from './cache';
import { runToolOk } from '../host/tool';
import { DaxpinError, reason } from '../errors';
import { Kernel } from './kernels';

const execFileAsync = promisify(execFile);
const gzip = promisify(zlib.gzip);

/**
 * Modules the guest's init loads when the kernel has them as modules (built-in ones are
 * skipped; dependencies come along from each module's modinfo). Every module of `root`
 * and `chains` is loaded before the guest command starts. Under TCG an insmod is slow
 * (a large module has megabytes to checksum for its signature and relocate; figures in
 * bench/README.md), so after `root` the chains load at the same time, one per vCPU.
 */
export interface GuestModules {
  /** First, in order: what mounting the host's root needs. */
  root: string[];
  /** Then each chain in order, the chains in parallel. A dependency two chains share loads with `root`. */
  chains: string[][];
  /** Only put in the image, for the kernel's request_module() (busybox modprobe) and the host's modprobe in the chroot. */
  onDemand: string[];
}

export const GUEST_MODULES: GuestModules = {
  // 9p shares (the host root, the results directory) and the overlay over the host root
  root: ['virtio_pci', '9pnet_virtio', '9p', 'overlay'],
  chains: [
    // emulated pmem: nd_e820 claims the memmap=…! region, nd_pmem makes /dev/pmem0
    ['nd_e820', 'nd_pmem', 'dax'],
    // ext4 (the first config) and crc32c, which ext4 and xfs ask the crypto API for (loaded
    // first it needs no modprobe call); loop (--scratch: /dev/loop-control exists only once
    // it is loaded); FUSE (the O_DIRECT pin's peer)
    ['crc32c_generic', 'ext4', 'loop', 'fuse'],
  ],
  // xfs: loaded by the kernel (request_module, busybox modprobe) when an XFS config mounts,
  // before any of its cases. Its insmod is the slowest of all under TCG (a 10 MB module on
  // 7.3; bench/README.md), which a run of ext4 configs only, or the first ext4 cases, need
  // not wait for.
  // NBD: the block-device peer of O_DIRECT pins (loaded by the worker's first nbd-* case);
  // dm-delay, another way to hold one (nothing loads it today); soft-RoCE for the rdma-*
  // pins: rdma_rxe over a dummy netdev, ib_uverbs for libibverbs (their UDP-tunnel and
  // ib_core dependencies come along; crc32_generic: 6.1's rxe asks the crypto API for crc32).
  onDemand: ['xfs', 'virtio_console', 'nbd', 'dm_delay', 'dummy', 'ib_uverbs', 'rdma_rxe', 'crc32_generic'],
};

/** Every module the image carries. */
export function guestModuleNames(m: GuestModules): string[] {
  return [...m.root, ...m.chains.flat(), ...m.onDemand];
}

/**
 * The load lists of the init: `root`, then one list per chain, each in dependency order.
 * A module that more than one chain needs (itself or as a dependency) moves to the end
 * of `root`, so no chain waits on another or loads the same module twice.
 */
export function loadStages(m: GuestModules, depends: Map<string, string[]>): { root: string[]; chains: string[][] } {
  const root = loadOrder(m.root, depends);
  const chains = m.chains.map((c) => loadOrder(c, depends).filter((n) => !root.includes(n)));
  const shared = new Set(chains.flatMap((c, i) => c.filter((n) => chains.some((o, j) => j !== i && o.includes(n)))));
  const rootAll = loadOrder([...root, ...shared], depends);
  return { root: rootAll, chains: chains.map((c) => c.filter((n) => !rootAll.includes(n))) };
}

/** Where the guest finds its boot files inside the results share. */
export const GUEST_BOOT_DIR = '.daxpin-boot';

/** Console lines the init prints; the host's qemu driver watches for them. */
export const GUEST_MARKERS = {
  probe: 'daxpin-guest: probe ok',
  commandStart: 'daxpin-guest: command start',
  commandExit: 'daxpin-guest: command exit ', // followed by the exit status
  error: 'daxpin-guest: error ', // followed by what failed
  at: 'daxpin-guest: at ', // followed by the guest's uptime in seconds and a phase: init, root, modules, prefetched
} as const;

/** `9p-fs.ko.xz` → `9p_fs`: the kernel treats - and _ in module names alike. */
export function moduleName(file: string): string {
  return path.basename(file).replace(/\.ko(\.(xz|zst|gz))?$/, '').replace(/-/g, '_');
}

/** The `.modinfo` section of an ELF64 module as key=value pairs (a key may repeat). */
export function modinfo(elf: Buffer): [string, string][] {
  if (elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2) throw new Error('not an ELF64 object');
  const shoff = Number(elf.readBigUInt64LE(0x28));
  const shentsize = elf.readUInt16LE(0x3a);
  const shnum = elf.readUInt16LE(0x3c);
  const shstrndx = elf.readUInt16LE(0x3e);
  const section = (i: number) => {
    const at = shoff + i * shentsize;
    return { name: elf.readUInt32LE(at), offset: Number(elf.readBigUInt64LE(at + 0x18)), size: Number(elf.readBigUInt64LE(at + 0x20)) };
  };
  const strtab = section(shstrndx);
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    const nameAt = strtab.offset + s.name;
    if (elf.toString('latin1', nameAt, elf.indexOf(0, nameAt)) !== '.modinfo') continue;
    return elf
      .toString('latin1', s.offset, s.offset + s.size)
      .split('\0')
      .filter((kv) => kv.includes('='))
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]);
  }
  return [];
}

/** The program headers of an ELF64 file (type, file offset, file size), up to the end of the buffer. */
export function programHeaders(elf: Buffer): Array<{ type: number; offset: number; size: number }> {
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  const headers: Array<{ type: number; offset: number; size: number }> = [];
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (ph + 56 > elf.length) break;
    headers.push({ type: elf.readUInt32LE(ph), offset: Number(elf.readBigUInt64LE(ph + 8)), size: Number(elf.readBigUInt64LE(ph + 32)) });
  }
  return headers;
}

/** Whether an ELF executable is statically linked (has no PT_INTERP program header). */
export function isStaticElf(elf: Buffer): boolean {
  return !programHeaders(elf).some((h) => h.type === 3);
}

/**
 * Orders modules so that each comes after what it depends on, keeping the wanted
 * order otherwise. `depends` maps a module name to the names it needs.
 */
export function loadOrder(wanted: string[], depends: Map<string, string[]>): string[] {
  const order: string[] = [];
  const visit = (name: string, stack: string[]) => {
    if (order.includes(name) || stack.includes(name)) return;
    for (const dep of depends.get(name) ?? []) visit(dep, [...stack, name]);
    order.push(name);
  };
  for (const name of wanted) if (depends.has(name)) visit(name, []);
  return order;
}

/** One entry of a newc archive. */
export interface CpioEntry {
  path: string;
  /** Full st_mode, type bits included. */
  mode: number;
  data?: Buffer;
  /** For character devices. */
  rdev?: { major: number; minor: number };
}

/** Writes a cpio archive in the "newc" format the kernel unpacks into its rootfs. */
export function newcArchive(entries: CpioEntry[]): Buffer {
  const chunks: Buffer[] = [];
  const pad = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);
  const push = (name: string, mode: number, data: Buffer, ino: number, rdev = { major: 0, minor: 0 }) => {
    const nameBuf = Buffer.from(`${name}\0`);
    const fields = [ino, mode, 0, 0, 1, 0, data.length, 0, 0, rdev.major, rdev.minor, nameBuf.length, 0];
    const header = Buffer.from('070701' + fields.map((f) => f.toString(16).padStart(8, '0')).join(''), 'latin1');
    chunks.push(header, nameBuf, pad(header.length + nameBuf.length), data, pad(data.length));
  };
  entries.forEach((e, i) => push(e.path.replace(/^\/+/, ''), e.mode, e.data ?? Buffer.alloc(0), i + 1, e.rdev));
  push('TRAILER!!!', 0, Buffer.alloc(0), 0);
  return Buffer.concat(chunks);
}

async function decompressedModule(file: string): Promise<Buffer> {
  const tool = file.endsWith('.xz') ? 'xz' : file.endsWith('.zst') ? 'zstd' : null;
  if (tool) {
    const { stdout } = await execFileAsync(tool, ['-dc', file], { encoding: 'buffer', maxBuffer: 512 * 1024 * 1024 });
    return stdout;
  }
  const raw = await fs.readFile(file);
  return file.endsWith('.gz') ? promisify(zlib.gunzip)(raw) : raw;
}

/** Every module file under `<modulesDir>/kernel`, by module name. */
async function moduleIndex(modulesDir: string): Promise<Map<string, string>> {
  const index = new Map<string, string>();
  const entries = await fs.readdir(path.join(modulesDir, 'kernel'), { recursive: true, withFileTypes: true });
  for (const e of entries) {
    if (e.isFile() && /\.ko(\.(xz|zst|gz))?$/.test(e.name)) {
      const full = path.join(e.parentPath, e.name);
      index.set(moduleName(e.name), full);
    }
  }
  return index;
}

interface StagedModule {
  name: string;
  /** Path relative to the modules dir, without compression suffix. */
  relPath: string;
  elf: Buffer;
  depends: string[];
}

/** The wanted modules this kernel has as modules, plus everything they depend on. */
async function collectModules(modulesDir: string, wanted: string[]): Promise<StagedModule[]> {
  const index = await moduleIndex(modulesDir);
  const staged = new Map<string, StagedModule>();
  const queue = wanted.filter((m) => index.has(m));
  while (queue.length > 0) {
    const name = queue.shift() as string;
    if (staged.has(name)) continue;
    const file = index.get(name);
    if (!file) throw new DaxpinError('EINITRAMFS', `module ${name} is needed but missing from ${modulesDir}`);
    const elf = await decompressedModule(file);
    const depends = modinfo(elf)
      .filter(([k, v]) => k === 'depends' && v)
      .flatMap(([, v]) => v.split(','))
      .map((d) => d.replace(/-/g, '_'));
    const relPath = path.relative(modulesDir, file).replace(/\.(xz|zst|gz)$/, '');
    staged.set(name, { name, relPath, elf, depends });
    queue.push(...depends);
  }
  return [...staged.values()];
}

/**
 * The guest's /init: `guest-init.sh` beside this module's source, shipped in the tree
 * and read at run time (see the script for what it does). The kernel release it needs
 * comes from `/etc/daxpin/release` in the image.
 */
export const GUEST_INIT_SCRIPT = path.resolve(__dirname, '..', '..', '..', 'lib', 'vm', 'guest-init.sh');

export async function initScript(): Promise<string> {
  try {
    return await fs.readFile(GUEST_INIT_SCRIPT, 'utf8');
  } catch (err) {
    throw new DaxpinError('EINITRAMFS', `cannot read the guest init script: ${reason(err)}`);
  }
}

function initramfsDir(): string {
  return path.join(cacheRoot(), 'initramfs');
}

const BUSYBOX = '/bin/busybox';

/**
 * Builds (or finds in the cache) the initramfs for a kernel and returns its path.
 * `modules` defaults to GUEST_MODULES.
 */
export async function buildInitramfs(kernel: Kernel, options: { modules?: GuestModules } = {}): Promise<string> {
  const wanted = options.modules ?? GUEST_MODULES;
  const busybox = await fs.readFile(BUSYBOX).catch(() => null);
  if (!busybox || !isStaticElf(busybox)) {
    throw new DaxpinError('ENOHOSTPKG', `${BUSYBOX} is missing or not static: install busybox-static`);
  }
  const init = await initScript();
  const modulesStat = kernel.modulesDir ? await fs.stat(kernel.modulesDir) : null;
  const key = createHash('sha256')
    .update(JSON.stringify({ init, wanted, kernel, modulesMtime: modulesStat?.mtimeMs ?? null }))
    .update(busybox)
    .digest('hex')
    .slice(0, 16);
  const out = path.join(await ensureDir(initramfsDir()), `${kernel.release}-${key}.cpio.gz`);
  if (await exists(out)) return out;

  const modules = kernel.modulesDir ? await collectModules(kernel.modulesDir, guestModuleNames(wanted)) : [];
  const modulesRoot = `usr/lib/modules/${kernel.release}`;
  const depmodTree = await stageForDepmod(kernel, modules);
  let moduleFiles: CpioEntry[];
  try {
    moduleFiles = await treeEntries(depmodTree.dir, modulesRoot);
  } finally {
    await fs.rm(depmodTree.root, { recursive: true, force: true });
  }
  const stages = loadStages(wanted, new Map(modules.map((m) => [m.name, m.depends])));
  const relPathOf = new Map(modules.map((m) => [m.name, m.relPath]));
  const list = (names: string[]) => names.map((n) => `${n} ${relPathOf.get(n)}\n`).join('');

  const dir = (p: string): CpioEntry => ({ path: p, mode: 0o040755 });
  const file = (p: string, data: Buffer | string, perm = 0o644): CpioEntry => ({
    path: p,
    mode: 0o100000 | perm,
    data: Buffer.isBuffer(data) ? data : Buffer.from(data),
  });
  const symlink = (p: string, target: string): CpioEntry => ({ path: p, mode: 0o120777, data: Buffer.from(target) });
  const entries: CpioEntry[] = [
    ...['bin', 'dev', 'etc', 'etc/daxpin', 'proc', 'sys', 'usr', 'usr/lib', 'usr/lib/modules', 'run', 'tmp'].map(dir),
    symlink('lib', 'usr/lib'),
    symlink('sbin', 'bin'),
    // the kernel opens /dev/console for init's stdio before /init can mount devtmpfs
    { path: 'dev/console', mode: 0o020600, rdev: { major: 5, minor: 1 } },
    file('bin/busybox', busybox, 0o755),
    file('init', init, 0o755),
    file('etc/daxpin/release', `${kernel.release}\n`),
    file('etc/daxpin/modules.root', list(stages.root)),
    ...stages.chains.filter((c) => c.length > 0).map((c, i) => file(`etc/daxpin/modules.chain${i}`, list(c))),
    ...moduleFiles,
  ];
  await storeVersion(out, await gzip(newcArchive(entries), { level: 6 }), versionsOf(kernel.release, '\\.cpio\\.gz'));
  return out;
}

/**
 * Writes the modules (decompressed: busybox insmod cannot read .ko.xz) and the
 * kernel's modules.builtin/order into a scratch tree and runs `depmod -b` on it, so
 * both busybox and the host's modprobe (in the chroot) find them.
 */
async function stageForDepmod(kernel: Kernel, modules: StagedModule[]): Promise<{ root: string; dir: string }> {
  const root = await fs.mkdtemp(path.join(await ensureDir(initramfsDir()), '.stage-'));
  // depmod looks in <base>/lib/modules or <base>/usr/lib/modules depending on its build
  await fs.mkdir(path.join(root, 'usr/lib/modules', kernel.release), { recursive: true });
  await fs.symlink('usr/lib', path.join(root, 'lib'));
  const dir = path.join(root, 'usr/lib/modules', kernel.release);
  for (const m of modules) {
    await fs.mkdir(path.dirname(path.join(dir, m.relPath)), { recursive: true });
    await fs.writeFile(path.join(dir, m.relPath), m.elf);
  }
  for (const meta of ['modules.builtin', 'modules.builtin.modinfo', 'modules.order']) {
    const src = kernel.modulesDir ? path.join(kernel.modulesDir, meta) : '';
    if (src && (await exists(src))) await fs.copyFile(src, path.join(dir, meta));
  }
  try {
    await runToolOk('depmod', ['-b', root, kernel.release]);
  } catch (err) {
    await fs.rm(root, { recursive: true, force: true });
    throw new DaxpinError('EINITRAMFS', `depmod for ${kernel.release} failed: ${reason(err)} (install kmod)`);
  }
  return { root, dir };
}

/** Archive entries for every directory and file under `dir`, placed at `prefix`. */
async function treeEntries(dir: string, prefix: string): Promise<CpioEntry[]> {
  const entries: CpioEntry[] = [{ path: prefix, mode: 0o040755 }];
  const walk = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  const rel = (e: (typeof walk)[number]) => path.relative(dir, path.join(e.parentPath, e.name));
  for (const e of walk.sort((a, b) => rel(a).localeCompare(rel(b)))) {
    const p = path.join(prefix, rel(e));
    if (e.isDirectory()) entries.push({ path: p, mode: 0o040755 });
    else if (e.isFile()) entries.push({ path: p, mode: 0o100644, data: await fs.readFile(path.join(dir, rel(e))) });
  }
  return entries;
}
