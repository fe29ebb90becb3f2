// Where a run came from, read off the machine it runs on: what a regression mail needs
// to say exactly which kernel, build, devices and tools were tested. Every field is read,
// none assumed; what cannot be read is null.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { BootProvenance, Provenance } from '../outcome';

/** Kernel config options that decide how pinned DAX and page-cache pages behave, or what the run can see. */
export const CONFIG_KEYS = [
  'CONFIG_FS_DAX',
  'CONFIG_FS_DAX_PMD',
  'CONFIG_ZONE_DEVICE',
  'CONFIG_DEV_DAX',
  'CONFIG_BLK_DEV_PMEM',
  'CONFIG_X86_PMEM_LEGACY',
  'CONFIG_LIBNVDIMM',
  'CONFIG_TRANSPARENT_HUGEPAGE',
  'CONFIG_READ_ONLY_THP_FOR_FS',
  'CONFIG_XFS_FS',
  'CONFIG_EXT4_FS',
  'CONFIG_FUSE_FS',
  'CONFIG_IO_URING',
  'CONFIG_BLK_DEV_NBD',
  'CONFIG_RDMA_RXE',
  'CONFIG_PROVE_LOCKING',
  'CONFIG_KASAN',
  'CONFIG_DEBUG_VM',
  'CONFIG_DETECT_HUNG_TASK',
];

function read(p: string): string | null {
  try {
    return fs.readFileSync(p, 'utf8').trim();
  } catch {
    return null;
  }
}

/** What a command printed: its stdout, or its stderr when stdout is empty (e2fsprogs print -V there); null when it printed nothing or could not run. */
function run(cmd: string, args: string[], cwd?: string): string | null {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], cwd, timeout: 10_000 });
  const out = (r.stdout ?? '').trim() || (r.stderr ?? '').trim();
  return out === '' ? null : out;
}

/** The values of `keys` in a kernel .config text: "y", "m", a value, or "is not set". */
export function configLines(text: string, keys: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of keys) {
    const set = new RegExp(`^${key}=(.*)$`, 'm').exec(text);
    out[key] = set ? set[1] : new RegExp(`^# ${key} is not set$`, 'm').test(text) ? 'is not set' : 'absent';
  }
  return out;
}

/** A kernel build config: its digest and the lines that matter here; /proc/config.gz when `file` is not there. */
export function kernelConfigFrom(file: string, orProcConfig = true): Provenance['kernelConfig'] {
  let text: string | null = read(file);
  let source = file;
  if (text === null) {
    if (!orProcConfig) return null;
    try {
      text = zlib.gunzipSync(fs.readFileSync('/proc/config.gz')).toString('utf8');
      source = '/proc/config.gz';
    } catch {
      return null;
    }
  }
  return { source, sha256: createHash('sha256').update(text).digest('hex'), lines: configLines(text, CONFIG_KEYS) };
}

/** A memmap=SIZE!START range on the command line: emulated pmem. */
export function memmapRanges(cmdline: string | null): string[] {
  return (cmdline ?? '').split(/\s+/).filter((w) => /^memmap=\S+!\S+$/.test(w)).map((w) => w.slice('memmap='.length));
}

function pmemDevices(cmdline: string | null): Provenance['pmem'] {
  let names: string[];
  try {
    names = fs.readdirSync('/sys/block').filter((n) => /^pmem\d+/.test(n));
  } catch {
    return [];
  }
  const memmap = memmapRanges(cmdline);
  return names.map((name, i) => {
    const sectors = Number(read(`/sys/block/${name}/size`) ?? 0);
    // /sys/block/pmemN/device is the namespace (namespaceX.Y) on NVDIMMs; e820 (memmap=) regions have one too.
    let namespace: string | null = null;
    try {
      namespace = path.basename(fs.realpathSync(`/sys/block/${name}/device`));
    } catch {
      // no device link
    }
    const mode = namespace ? read(`/sys/bus/nd/devices/${namespace}/mode`) : null;
    return { device: `/dev/${name}`, bytes: sectors * 512, namespace, mode, memmap: memmap[i] ?? null };
  });
}

function daxpinCommit(): string | null {
  const root = path.join(__dirname, '..', '..', '..');
  const head = run('git', ['rev-parse', 'HEAD'], root);
  if (head === null || !/^[0-9a-f]{40}$/.test(head)) return null;
  const dirty = run('git', ['status', '--porcelain', '--untracked-files=no'], root);
  return dirty ? `${head}-dirty` : head;
}

function firstLine(s: string | null): string | null {
  return s === null ? null : (s.split('\n')[0] ?? null);
}

/** What is the same wherever this daxpin runs (a guest runs the host's root): daxpin, node, the tools. */
export function toolProvenance(): Pick<Provenance, 'daxpin' | 'node' | 'tools'> {
  const pkgJson = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version: string };
  return {
    daxpin: { commit: daxpinCommit(), version: pkgJson.version },
    node: process.version,
    tools: {
      'mkfs.xfs': firstLine(run('mkfs.xfs', ['-V'])),
      'mkfs.ext4': firstLine(run('mkfs.ext4', ['-V'])),
      xfs_repair: firstLine(run('xfs_repair', ['-V'])),
      e2fsck: firstLine(run('e2fsck', ['-V'])),
      qemu: firstLine(run('qemu-system-x86_64', ['--version'])),
    },
  };
}

/**
 * A guest boot's own view. Not the tools, daxpin's commit or dpkg: under TCG, over the
 * guest's 9p root, they took 19 s before the first case (git status alone 3.6 s, dpkg's
 * database ~10 s), and say nothing the host's run record does not (same root).
 */
export function readBootProvenance(kernelLogFrom: Provenance['kernelLogFrom']): BootProvenance {
  const cmdline = read('/proc/cmdline');
  return { procVersion: read('/proc/version'), cmdline, pmem: pmemDevices(cmdline), kernelLogFrom };
}

export function readProvenance(kernelLogFrom: Provenance['kernelLogFrom']): Provenance {
  const release = os.release();
  const cmdline = read('/proc/cmdline');
  const owner = run('dpkg-query', ['-S', `/boot/vmlinuz-${release}`]);
  const pkg = owner && !/no path found/.test(owner) ? owner.split(':')[0] : null;
  const version = pkg ? run('dpkg-query', ['-W', '-f=${Version}', pkg]) : null;
  return {
    procVersion: read('/proc/version'),
    cmdline,
    kernelPackage: pkg ? `${pkg} ${version ?? '?'}` : null,
    kernelConfig: kernelConfigFrom(`/boot/config-${release}`),
    ...toolProvenance(),
    pmem: pmemDevices(cmdline),
    kernelLogFrom,
  };
}
