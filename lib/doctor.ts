// `daxpin doctor`: what works on this machine and what to do where it does not. The probing
// (gatherFacts) only reads what the kernel and the tools say; the judgement (doctorReport) is
// a pure function of those facts. The main job is the qemu runner (`daxpin run` with no
// --dir/--scratch/--device): it needs root, qemu with TCG or a KVM that really runs a guest,
// the host packages it would otherwise install, and room in the cache. A native DAX run needs
// more from the host kernel itself: a pmem device or a DAX-mounted filesystem, FUSE, io_uring,
// tracefs. Exit 0 when the main job can run.

import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { readMountinfo } from './host/mountinfo';

export interface DoctorFacts {
  root: boolean;
  kernelRelease: string;
  /** `qemu-system-x86_64 --version`'s version, or null when qemu is not there. */
  qemuVersion: string | null;
  /** Accelerators qemu lists (`-accel help`). */
  qemuAccels: string[];
  /** /dev/kvm is there and this process may open it read-write. */
  kvmDevice: boolean;
  /** lib/vm's probe boot (cached per kernel): 'kvm' when a guest really ran under KVM; null: not probed. */
  kvmProbe: { kernel: string; accel: 'kvm' | 'tcg' } | null;
  /** Host packages the VM runner installs when missing (dpkg says not installed). */
  missingHostPackages: string[];
  /** fuse in /proc/filesystems, and /dev/fuse. */
  fuse: { filesystem: boolean; device: boolean };
  loopControl: boolean;
  /** io_uring_setup worked here (the errno when not); kernel.io_uring_disabled (null: no such sysctl). */
  ioUring: { works: boolean; errno: string | null; disabledSysctl: number | null };
  /** tracefs in /proc/filesystems; where it is mounted (null: nowhere), and whether the fs_dax tracepoints exist there. */
  tracefs: { supported: boolean; mountPoint: string | null; fsDaxEvents: boolean };
  /** nbd: loaded, or a module the running kernel can load. */
  nbd: { loaded: boolean; module: boolean };
  cache: { dir: string; freeBytes: number | null };
  kernelsCached: string[];
  pmemDevices: string[];
  /** Mounted filesystems with a dax option, and what statx says of a regular file in their root (null: no file to ask). */
  daxMounts: Array<{ mountPoint: string; source: string; fsType: string; statxDax: boolean | null; file: string | null }>;
}

export type DoctorStatus = 'ok' | 'missing' | 'note';

export interface DoctorLine {
  what: string;
  status: DoctorStatus;
  /** What was found. */
  found: string;
  /** What to do, when something is missing. */
  todo?: string;
}

export interface DoctorReport {
  lines: DoctorLine[];
  /** The main job (the qemu runner) can run here. */
  qemuRunner: boolean;
  /** A native DAX run (`daxpin run --device /dev/pmemN` or `--dir` on fsdax) can run here. */
  nativeDax: boolean;
  summary: string[];
}

const NATIVE_NEEDS = ['root', 'FUSE (host)', 'io_uring (host)'];

/** The cache needs room for a kernel's packages, its unpacked tree and initramfs. */
export const MIN_CACHE_FREE_BYTES = 2 * 1024 ** 3;

function gib(bytes: number): string {
  return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
}

export function doctorReport(f: DoctorFacts): DoctorReport {
  const lines: DoctorLine[] = [];
  const add = (what: string, ok: boolean, found: string, todo: string) => lines.push(ok ? { what, status: 'ok', found } : { what, status: 'missing', found, todo });

  add('root', f.root, f.root ? 'running as root' : 'not root', 'run daxpin as root: it mounts filesystems, pins pages and reads /dev/kmsg');

  const qemu = f.qemuVersion !== null;
  add('qemu', qemu, qemu ? `qemu-system-x86_64 ${f.qemuVersion}` : 'qemu-system-x86_64 not found', 'apt-get install qemu-system-x86 (the VM runner installs it when run as root)');
  const tcg = f.qemuAccels.includes('tcg');
  if (qemu) add('TCG', tcg, tcg ? 'qemu offers TCG (software emulation)' : `qemu offers ${f.qemuAccels.join(', ') || 'no accelerator'}`, 'install a qemu-system-x86 build with TCG');

  const kvmWorks = f.kvmProbe?.accel === 'kvm';
  if (!f.kvmDevice) lines.push({ what: 'KVM', status: 'note', found: '/dev/kvm absent or not writable: guests run under TCG', todo: 'optional: enable virtualisation (nested, or in the BIOS) and load kvm_intel/kvm_amd for faster guests' });
  else if (!f.kvmProbe) lines.push({ what: 'KVM', status: 'note', found: '/dev/kvm is there; no probe yet (no kernel cached)', todo: 'the first `daxpin vm` boots a probe guest and uses KVM only if it really runs' });
  else if (kvmWorks) lines.push({ what: 'KVM', status: 'ok', found: `a ${f.kvmProbe.kernel} guest ran under KVM (probe)` });
  else lines.push({ what: 'KVM', status: 'note', found: `/dev/kvm is there but a ${f.kvmProbe.kernel} probe guest did not run under it: guests run under TCG`, todo: 'nothing to do; daxpin falls back to TCG (slower)' });

  add('host packages', f.missingHostPackages.length === 0, f.missingHostPackages.length === 0 ? 'the VM runner\'s packages are installed' : `missing: ${f.missingHostPackages.join(' ')}`, f.root ? 'the VM runner installs them on first use' : `apt-get install ${f.missingHostPackages.join(' ')}`);

  const free = f.cache.freeBytes;
  add('cache space', free !== null && free >= MIN_CACHE_FREE_BYTES, free === null ? `${f.cache.dir}: cannot tell` : `${gib(free)} free for ${f.cache.dir}`, `free ${gib(MIN_CACHE_FREE_BYTES)} there or point XDG_CACHE_HOME elsewhere`);
  lines.push({ what: 'kernels cached', status: 'note', found: f.kernelsCached.length ? f.kernelsCached.join(', ') : 'none', ...(f.kernelsCached.length ? {} : { todo: 'the first `daxpin run` downloads the default Debian kernel' }) });

  const fuse = f.fuse.filesystem && f.fuse.device;
  add('FUSE (host)', fuse, `${f.fuse.filesystem ? 'fuse in /proc/filesystems' : 'no fuse filesystem'}, ${f.fuse.device ? '/dev/fuse' : 'no /dev/fuse'}`, 'modprobe fuse (native O_DIRECT pins go through daxpin\'s FUSE peer)');
  add('loop (host)', f.loopControl, f.loopControl ? '/dev/loop-control' : 'no /dev/loop-control', 'modprobe loop (--scratch makes loop-backed filesystems)');
  const uringDisabled = f.ioUring.disabledSysctl !== null && f.ioUring.disabledSysctl !== 0;
  add(
    'io_uring (host)',
    f.ioUring.works,
    `${f.ioUring.works ? 'io_uring_setup works' : `io_uring_setup failed (${f.ioUring.errno})`}; kernel.io_uring_disabled=${f.ioUring.disabledSysctl ?? 'n/a'}`,
    uringDisabled ? 'sysctl kernel.io_uring_disabled=0 (uring-* pin methods need it)' : 'a kernel with CONFIG_IO_URING (uring-* pin methods need it)',
  );
  add(
    'tracefs (host)',
    f.tracefs.supported,
    f.tracefs.mountPoint ? `${f.tracefs.mountPoint}${f.tracefs.fsDaxEvents ? ', fs_dax events' : ', no fs_dax events'}` : f.tracefs.supported ? 'not mounted; daxpin mounts it at /sys/kernel/tracing when it needs it' : 'no tracefs in this kernel',
    'a kernel with CONFIG_TRACING (without it, PMD faults on fsdax are not observed: pmd null)',
  );
  add('nbd (host)', f.nbd.loaded || f.nbd.module, f.nbd.loaded ? 'nbd loaded' : f.nbd.module ? 'nbd module available' : 'no nbd module', 'a kernel with CONFIG_BLK_DEV_NBD (optional; for an NBD-held pin)');

  const verified = f.daxMounts.filter((m) => m.statxDax === true);
  add('pmem device', f.pmemDevices.length > 0, f.pmemDevices.length ? f.pmemDevices.join(', ') : 'no /dev/pmem*', 'a native DAX run needs an NVDIMM or memmap=SIZE!OFFSET on the host kernel command line; or use the qemu runner');
  if (f.daxMounts.length === 0) lines.push({ what: 'DAX mount', status: 'note', found: 'no filesystem mounted with dax' });
  for (const m of f.daxMounts) {
    const found = `${m.mountPoint} (${m.fsType} on ${m.source}): ${m.statxDax === null ? 'no regular file in its root to ask statx' : m.statxDax ? `statx says DAX on ${m.file}` : `statx says no DAX on ${m.file}`}`;
    if (m.statxDax === true) lines.push({ what: 'DAX mount', status: 'ok', found });
    else lines.push({ what: 'DAX mount', status: m.statxDax === null ? 'note' : 'missing', found, todo: m.statxDax === null ? `daxpin run --dir ${m.mountPoint} verifies it on its own test file` : 'mounted with dax but not DAX: check dax=always and a pmem-backed device' });
  }

  const accel = tcg || kvmWorks;
  const qemuRunner = f.root && qemu && accel && (free === null || free >= MIN_CACHE_FREE_BYTES);
  // A native DAX run formats a pmem device (--device) or works on a DAX mount (--dir), and
  // pins through FUSE and io_uring on the host kernel. Without tracefs it still runs; PMD
  // faults on fsdax are then not observed (pmd: null).
  const nativeMissing = [
    ...lines.filter((l) => l.status === 'missing' && NATIVE_NEEDS.includes(l.what)).map((l) => l.what),
    ...(f.pmemDevices.length > 0 || verified.length > 0 ? [] : ['a pmem device (or a DAX mount statx confirms)']),
  ];
  const nativeDax = nativeMissing.length === 0;
  const summary: string[] = [];
  summary.push(
    qemuRunner
      ? `the qemu runner can run here: ${kvmWorks ? 'KVM' : 'TCG'} guests boot Debian kernels with emulated pmem (memmap), so fsdax is real inside them whatever this host lacks`
      : `the qemu runner cannot run here: ${[!f.root && 'not root', !qemu && 'no qemu', qemu && !accel && 'no TCG and no working KVM', free !== null && free < MIN_CACHE_FREE_BYTES && 'too little cache space'].filter(Boolean).join(', ')}`,
  );
  summary.push(nativeDax ? 'a native DAX run can run here too' : `a native DAX run cannot run here: missing ${nativeMissing.join(', ')}`);
  return { lines, qemuRunner, nativeDax, summary };
}

export function renderDoctor(r: DoctorReport): string {
  const width = Math.max(...r.lines.map((l) => l.what.length));
  const out = r.lines.map((l) => `${l.what.padEnd(width)}  ${l.status.padEnd(7)}  ${l.found}${l.todo ? `  → ${l.todo}` : ''}`);
  return `${[...out, '', ...r.summary].join('\n')}\n`;
}

// ---- probing: thin reads of what the kernel and tools say ----

const execFileAsync = promisify(execFile);

async function output(cmd: string, args: string[]): Promise<string | null> {
  try {
    const { stdout } = await execFileAsync(cmd, args, { timeout: 10_000 });
    return stdout;
  } catch {
    return null;
  }
}

function readText(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

function writable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.R_OK | fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

function freeBytes(dir: string): number | null {
  // The cache may not exist yet: the nearest existing parent is where it would go.
  for (let d = dir; ; d = path.dirname(d)) {
    try {
      const s = fs.statfsSync(d);
      return s.bavail * s.bsize;
    } catch {
      if (d === path.dirname(d)) return null;
    }
  }
}

type Native = typeof import('./native');

function ioUringProbe({ native }: Native): DoctorFacts['ioUring'] {
  const sysctl = readText('/proc/sys/kernel/io_uring_disabled');
  let works = false;
  let errno: string | null = null;
  try {
    new native.Ring().close();
    works = true;
  } catch (err) {
    errno = (err as NodeJS.ErrnoException).code ?? String(err);
  }
  return { works, errno, disabledSysctl: sysctl === null ? null : Number(sysctl.trim()) };
}

function daxMounts({ native, isDax }: Native): DoctorFacts['daxMounts'] {
  return readMountinfo()
    .filter((m) => /(^|,)dax(=always|=inode)?(,|$)/.test(`${m.mountOptions},${m.superOptions}`))
    .map((m) => {
      let file: string | null = null;
      try {
        file = fs.readdirSync(m.mountPoint).map((n) => path.join(m.mountPoint, n)).find((p) => fs.lstatSync(p).isFile()) ?? null;
      } catch {
        file = null;
      }
      let statxDax: boolean | null = null;
      if (file) {
        try {
          statxDax = isDax(native.statx(file));
        } catch {
          statxDax = null;
        }
      }
      return { mountPoint: m.mountPoint, source: m.source, fsType: m.fsType, statxDax, file };
    });
}

/** Reads the facts; `probeKvm` boots lib/vm's short probe guest when no verdict is cached. */
export async function gatherFacts(options: { probeKvm: boolean }): Promise<DoctorFacts> {
  const { cacheRoot } = await import('./vm/cache');
  const { cachedKernels } = await import('./vm/kernels');
  const { missingPackages, VM_HOST_PACKAGES } = await import('./vm/provision');
  const version = await output('qemu-system-x86_64', ['--version']);
  const accelHelp = version === null ? null : await output('qemu-system-x86_64', ['-accel', 'help']);
  const kernels = await cachedKernels().catch(() => []);
  const kvmDevice = writable('/dev/kvm');
  let kvmProbe: DoctorFacts['kvmProbe'] = null;
  const newest = kernels[kernels.length - 1];
  if (kvmDevice && options.probeKvm && newest && version !== null) {
    const { buildInitramfs } = await import('./vm/initramfs');
    const { probeAccel } = await import('./vm/accel');
    kvmProbe = { kernel: newest.release, accel: await probeAccel(newest, await buildInitramfs(newest)) };
  }
  const filesystems = readText('/proc/filesystems') ?? '';
  const tracefs = readMountinfo().find((m) => m.fsType === 'tracefs');
  const dir = cacheRoot();
  const nat = await import('./native');
  return {
    root: process.getuid?.() === 0,
    kernelRelease: os.release(),
    qemuVersion: version === null ? null : (/version (\S+)/.exec(version)?.[1] ?? version.trim()),
    qemuAccels: (accelHelp ?? '').split('\n').map((l) => l.trim()).filter((l) => /^[a-z]+$/.test(l)),
    kvmDevice,
    kvmProbe,
    missingHostPackages: await missingPackages(Object.keys(VM_HOST_PACKAGES)),
    fuse: { filesystem: /\bfuse$/m.test(filesystems), device: fs.existsSync('/dev/fuse') },
    loopControl: fs.existsSync('/dev/loop-control'),
    ioUring: ioUringProbe(nat),
    tracefs: { supported: /\btracefs$/m.test(filesystems), mountPoint: tracefs?.mountPoint ?? null, fsDaxEvents: tracefs ? fs.existsSync(path.join(tracefs.mountPoint, 'events/fs_dax')) : false },
    nbd: { loaded: fs.existsSync('/sys/module/nbd'), module: (await output('modinfo', ['-n', 'nbd'])) !== null },
    cache: { dir, freeBytes: freeBytes(dir) },
    kernelsCached: kernels.map((k) => k.release),
    pmemDevices: fs.readdirSync('/dev').filter((n) => /^pmem\d+(\.\d+)?$/.test(n)).map((n) => `/dev/${n}`),
    daxMounts: daxMounts(nat),
  };
}
