// Boots one guest: a Debian kernel with emulated pmem, the host's root shared
// read-only, one command run inside, results written straight into a host directory.
// The host watches the serial console for the guest's markers and for panics, and
// kills a guest that stops making progress. No qemu outlives the host process.

import { splatOf } from '../splats';
import { ChildProcess, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { register } from '../host/lifecycle';
import { ensureDir, exists } from './cache';
import { DaxpinError } from '../errors';
import { commandScript, keepInGuest } from './guest';
import { GUEST_BOOT_DIR, GUEST_MARKERS } from './initramfs';
import { Kernel } from './kernels';
import { pvhImage } from './vmlinux';


export interface BootOptions {
  kernel: Kernel;
  initramfs: string;
  /** Guest RAM in MiB, not counting the pmem region. Default 2048. */
  memMb?: number;
  /** Size of /dev/pmem0 in MiB. Default 1024. */
  pmemMb?: number;
  /** Guest CPUs. Default 2: pin and layout op need to run at the same time. */
  cpus?: number;
  /** KVM only when a probe boot of this kernel proved it works (accel.ts probeAccel). */
  accel: 'tcg' | 'kvm';
  /** argv run inside the guest's chroot (the host's root): e.g. ['node', 'dist/lib/engine/worker.js']. */
  guestCommand: string[];
  /** Host directories under /tmp or /run the guest must see (its init mounts those afresh). */
  keepPaths?: string[];
  /**
   * Host files the guest command reads first (its executable, its modules): the init reads
   * them into the page cache in the background while it loads kernel modules. Best effort.
   */
  prefetch?: string[];
  /** Environment of the guest command, on top of PATH, HOME, LANG and DAXPIN_RESULTS. */
  env?: Record<string, string>;
  /** Working directory of the guest command. Default: this process's cwd (the same path exists in the guest). */
  cwd?: string;
  /** Host directory shared writable with the guest, at the same path. What the guest writes there survives a crash. */
  resultsDir: string;
  /** Whole-boot limit. Default: none. */
  timeoutMs?: number;
  /** Kill the guest after this long with no console output and no growth in resultsDir. Default 180 s. */
  idleTimeoutMs?: number;
  onConsoleLine?: (line: string) => void;
  /** Stops the guest (SIGTERM, then SIGKILL) when aborted; the result says `aborted`. */
  signal?: AbortSignal;
  /** More kernel command line parameters. */
  append?: string[];
}

export interface BootResult {
  /** Exit status of the guest command; null when it never finished. */
  exitCode: number | null;
  /** The kernel panicked ("Kernel panic - not syncing"). */
  panicked: boolean;
  /** An Oops or BUG was printed; the guest may have gone on. */
  oopsed: boolean;
  /** Killed at timeoutMs. */
  timedOut: boolean;
  /** Killed after idleTimeoutMs without progress. */
  wedged: boolean;
  /** Stopped because `signal` was aborted. */
  aborted: boolean;
  /** What the guest's init could not set up (mount of the host root, …), if anything. */
  setupError: string | null;
  accel: 'tcg' | 'kvm';
  /** ms from starting qemu to the guest command starting; null if it never started. */
  commandStartMs: number | null;
  durationMs: number;
  /** The last console lines (up to 200), qemu's own messages included. */
  consoleTail: string[];
}

const QEMU = 'qemu-system-x86_64';
const CONSOLE_TAIL_LINES = 200;

/**
 * Guest physical layout: the pmem region must sit above 4 GiB (below, it collides with
 * the PCI hole) inside RAM that qemu maps there. Capping RAM below 4 GiB at `memMb`
 * puts exactly `pmemMb` (+ whatever is left of memMb) above it, so the guest keeps
 * `memMb` of usable RAM.
 */
export function memoryLayout(memMb: number, pmemMb: number): { totalMb: number; lowMb: number; memmap: string } {
  // qemu warns about (and runs slower with) a RAM split that is not a whole GiB.
  const lowMb = memMb >= 1024 ? Math.min(Math.floor(memMb / 1024) * 1024, 3072) : memMb;
  return { totalMb: memMb + pmemMb, lowMb, memmap: `memmap=${pmemMb}M!4G` };
}

/**
 * qboot (qemu's minimal firmware) instead of SeaBIOS when installed: it goes straight to
 * the kernel, a little sooner under TCG (bench/README.md). It boots both a PVH vmlinux and a bzImage.
 */
export const QBOOT = '/usr/share/qemu/qboot.rom';

/**
 * Kernel command line parameters of every boot, besides the console and the pmem region.
 * Each saves boot time without touching what daxpin observes (fs, dax, mm).
 */
export const BOOT_PARAMS = [
  'panic=-1',
  'loglevel=5',
  // The crypto self-tests of every algorithm the kernel registers: most of a second of TCG
  // at boot (bench/README.md). daxpin tests no crypto; module signatures are still verified.
  'cryptomgr.notests',
  // 6.1's KDF SP800-108 self-test runs whatever cryptomgr.notests says.
  'initcall_blacklist=crypto_kdf108_init',
];

/** What qemu boots: the PVH vmlinux when the kernel has one (see vmlinux.ts), else the bzImage. */
export async function bootImage(kernel: Kernel): Promise<string> {
  return (await pvhImage(kernel).catch(() => null)) ?? kernel.vmlinuz;
}

/** qemu's option syntax doubles commas inside a value. */
function optValue(v: string): string {
  return v.replace(/,/g, ',,');
}

/** The qemu command line for a boot. `resultsDir` null: no shares (the KVM probe). */
export function qemuArgs(o: {
  kernel: Kernel;
  /** The file given to -kernel; default the kernel's bzImage. */
  image?: string;
  /** Firmware for -bios (QBOOT); null or missing: qemu's default (SeaBIOS). */
  bios?: string | null;
  initramfs: string;
  memMb: number;
  pmemMb: number;
  cpus: number;
  accel: 'tcg' | 'kvm';
  resultsDir: string | null;
  append: string[];
}): string[] {
  const mem = memoryLayout(o.memMb, o.pmemMb);
  const cmdline = ['console=ttyS0', mem.memmap, ...BOOT_PARAMS, ...o.append];
  const args = [
    '-machine',
    `pc,max-ram-below-4g=${mem.lowMb}M`,
    '-accel',
    o.accel,
    '-cpu',
    o.accel === 'kvm' ? 'host' : 'max',
    '-smp',
    String(o.cpus),
    '-m',
    `${mem.totalMb}M`,
    ...(o.bios ? ['-bios', o.bios] : []),
    '-kernel',
    o.image ?? o.kernel.vmlinuz,
    '-initrd',
    o.initramfs,
    '-append',
    cmdline.join(' '),
    '-nographic',
    '-no-reboot',
    '-nic',
    'none',
  ];
  if (o.resultsDir !== null) {
    args.push(
      '-virtfs',
      'local,path=/,mount_tag=host0,security_model=none,readonly=on,multidevs=remap',
      '-virtfs',
      `local,path=${optValue(o.resultsDir)},mount_tag=results,security_model=none,multidevs=remap`,
    );
  }
  return args;
}

/**
 * No qemu outlives this process: each is registered with the process lifecycle (killed
 * on Ctrl-C or SIGTERM, before the run files are closed), and killed at exit.
 */
function track(child: ChildProcess): void {
  const kill = () => {
    child.kill('SIGKILL');
  };
  const unregister = register(`qemu ${child.pid}`, kill, { early: true });
  process.on('exit', kill);
  const untrack = () => {
    unregister();
    process.removeListener('exit', kill);
  };
  child.once('exit', untrack);
  child.once('error', untrack);
}

export interface RunQemuOptions {
  args: string[];
  timeoutMs: number | null;
  idleTimeoutMs: number | null;
  /** Sampled each second; a change counts as progress. */
  progress: () => Promise<string>;
  onLine: (line: string, sinceStartMs: number) => void;
  signal?: AbortSignal;
}

export interface QemuExit {
  timedOut: boolean;
  wedged: boolean;
  aborted: boolean;
  consoleTail: string[];
  stderr: string;
  code: number | null;
  durationMs: number;
}

export function runQemu(o: RunQemuOptions): Promise<QemuExit> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(QEMU, o.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const tail: string[] = [];
    let stderr = '';
    let partial = '';
    let lastActivity = Date.now();
    let lastProgress = '';
    let timedOut = false;
    let wedged = false;
    let aborted = false;

    const stop = () => {
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 2000).unref();
    };
    const onAbort = () => {
      if (aborted || timedOut || wedged) return;
      aborted = true;
      stop();
    };
    if (o.signal?.aborted) onAbort();
    else o.signal?.addEventListener('abort', onAbort, { once: true });
    const addLine = (line: string) => {
      tail.push(line);
      if (tail.length > CONSOLE_TAIL_LINES) tail.shift();
      o.onLine(line, Date.now() - started);
    };
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      lastActivity = Date.now();
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) addLine(line.replace(/\r$/, ''));
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr += chunk;
    });

    const watchdog = setInterval(() => {
      const now = Date.now();
      if (o.timeoutMs !== null && now - started > o.timeoutMs && !timedOut && !aborted) {
        timedOut = true;
        stop();
      }
      void o.progress().then((p) => {
        if (p !== lastProgress) {
          lastProgress = p;
          lastActivity = Date.now();
        }
        if (o.idleTimeoutMs !== null && Date.now() - lastActivity > o.idleTimeoutMs && !wedged && !timedOut && !aborted) {
          wedged = true;
          stop();
        }
      });
    }, 1000);

    child.once('error', (err: NodeJS.ErrnoException) => {
      clearInterval(watchdog);
      o.signal?.removeEventListener('abort', onAbort);
      reject(
        err.code === 'ENOENT'
          ? new DaxpinError('EQEMU', `${QEMU} not found: install qemu-system-x86`)
          : new DaxpinError('EQEMU', `cannot start ${QEMU}: ${err.message}`),
      );
    });
    track(child);
    child.once('close', (code) => {
      clearInterval(watchdog);
      o.signal?.removeEventListener('abort', onAbort);
      if (partial) addLine(partial.replace(/\r$/, ''));
      for (const line of stderr.split('\n').filter(Boolean)) addLine(`qemu: ${line}`);
      resolve({ timedOut, wedged, aborted, consoleTail: tail, stderr, code, durationMs: Date.now() - started });
    });
  });
}

/** Size and mtime of every file under `dir`: changes when the guest writes results. */
async function treeSignature(dir: string): Promise<string> {
  try {
    const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
    let sig = '';
    for (const e of entries) {
      if (!e.isFile()) continue;
      const file = path.join(e.parentPath, e.name);
      const st = await fs.stat(file).catch(() => null);
      if (st) sig += `${file}:${st.size}:${st.mtimeMs};`;
    }
    return sig;
  } catch {
    return '';
  }
}

/** QBOOT when installed, else null (SeaBIOS). */
export async function firmware(): Promise<string | null> {
  return (await exists(QBOOT)) ? QBOOT : null;
}

/** Boots the guest, runs `guestCommand` in it, and reports how the boot ended. */
export async function bootGuest(o: BootOptions): Promise<BootResult> {
  const resultsDir = await fs.realpath(await ensureDir(o.resultsDir));
  const accel = o.accel;

  // The guest's init reads these from the results share (see initScript).
  const bootDir = await ensureDir(path.join(resultsDir, GUEST_BOOT_DIR));
  const exitStatusFile = path.join(bootDir, 'exit-status');
  await fs.rm(exitStatusFile, { force: true });
  const env = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: '/root',
    LANG: 'C.UTF-8',
    DAXPIN_RESULTS: resultsDir,
    ...o.env,
  };
  await fs.writeFile(path.join(bootDir, 'command.sh'), commandScript(o.guestCommand, env, o.cwd ?? process.cwd()));
  await fs.writeFile(path.join(bootDir, 'mountpoint'), resultsDir);
  // The command runs in cwd: the guest must see it even when it lies under /tmp.
  const cwd = o.cwd ?? process.cwd();
  const keep = [...(o.keepPaths ?? [])];
  const keepCwd = keepInGuest(cwd);
  if (keepCwd && !keep.some((k) => cwd === k || cwd.startsWith(`${k}/`))) keep.push(keepCwd);
  await fs.writeFile(path.join(bootDir, 'keep'), keep.map((p) => `${p}\n`).join(''));
  // One path a line for xargs: a path with blanks is left out (it is only a warm-up).
  const prefetch = (o.prefetch ?? []).filter((p) => path.isAbsolute(p) && !/\s/.test(p));
  await fs.writeFile(path.join(bootDir, 'prefetch'), prefetch.map((p) => `${p}\n`).join(''));

  let panicked = false;
  let oopsed = false;
  let setupError: string | null = null;
  let commandStartMs: number | null = null;
  let markerExit: number | null = null;
  const exit = await runQemu({
    args: qemuArgs({
      kernel: o.kernel,
      image: await bootImage(o.kernel),
      bios: await firmware(),
      initramfs: o.initramfs,
      memMb: o.memMb ?? 2048,
      pmemMb: o.pmemMb ?? 1024,
      cpus: o.cpus ?? 2,
      accel,
      resultsDir,
      append: o.append ?? [],
    }),
    timeoutMs: o.timeoutMs ?? null,
    idleTimeoutMs: o.idleTimeoutMs ?? 180_000,
    progress: () => treeSignature(resultsDir),
    signal: o.signal,
    onLine: (line, sinceStartMs) => {
      const splat = splatOf(line);
      if (splat === 'panic') panicked = true;
      if (splat === 'oops' || splat === 'bug' || splat === 'gpf') oopsed = true;
      if (line.startsWith(GUEST_MARKERS.commandStart)) commandStartMs = sinceStartMs;
      if (line.startsWith(GUEST_MARKERS.commandExit)) markerExit = Number(line.slice(GUEST_MARKERS.commandExit.length));
      if (line.startsWith(GUEST_MARKERS.error)) setupError = line.slice(GUEST_MARKERS.error.length);
      o.onConsoleLine?.(line);
    },
  });
  if (commandStartMs === null && setupError === null && !panicked && !exit.aborted && exit.code !== 0 && exit.stderr.trim()) {
    // qemu refused to start the machine at all: its own message is the error.
    throw new DaxpinError('EQEMU', `${QEMU}: ${exit.stderr.trim().split('\n').pop()}`);
  }
  // The file is what the guest fsync'd; the marker is a fallback if the share write was lost.
  const fromFile = (await exists(exitStatusFile)) ? Number((await fs.readFile(exitStatusFile, 'utf8')).trim()) : NaN;
  return {
    exitCode: Number.isInteger(fromFile) ? fromFile : markerExit,
    panicked,
    oopsed,
    timedOut: exit.timedOut,
    wedged: exit.wedged,
    aborted: exit.aborted,
    setupError,
    accel,
    commandStartMs,
    durationMs: exit.durationMs,
    consoleTail: exit.consoleTail,
  };
}
