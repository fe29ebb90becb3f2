// `daxpin lava`: a LAVA job definition that boots a given kernel on a lab board of a given
// device type and runs daxpin's test definition (lava/daxpin.yaml) on its pmem device, so
// daxpin reaches real NVDIMM machines it cannot boot here. The job is data: deploy over
// TFTP with an NFS root (the usual shape for x86 lab boards), boot, then the test action
// that fetches daxpin's repository at a fixed revision and runs the definition. Every result
// comes back as a lava-test-case of that definition (lava/run-daxpin).

import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { DaxpinError } from './errors';

export interface LavaJobOptions {
  /** URL of the kernel image (bzImage) to boot. */
  kernel: string;
  deviceType: string;
  /** The board's pmem device daxpin formats: /dev/pmemN. */
  pmem: string;
  /** URL of the root filesystem tarball (NFS root; Debian with node, npm and a C++ toolchain, or network to install them). */
  rootfs: string;
  modules?: string;
  ramdisk?: string;
  /** Extra kernel command line (e.g. memmap=4G!12G for emulated pmem on a board without NVDIMMs). */
  kernelArgs?: string;
  bootMethod: string;
  /** daxpin's git repository as the lab reaches it, and the revision to test. */
  repository: string;
  revision: string;
  matrix: string;
  configs?: string[];
  cases?: string[];
  /** Minutes for the test action (the whole matrix on one board). */
  testMinutes: number;
}

const BOOT_METHODS = ['ipxe', 'grub', 'u-boot'];

function url(what: string, value: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new DaxpinError('lava-usage', `${what} must be a URL the lab can download, got ${JSON.stringify(value)}`);
  }
  if (!['http:', 'https:', 'ftp:'].includes(u.protocol)) throw new DaxpinError('lava-usage', `${what} must be an http(s) or ftp URL, got ${u.protocol}`);
  return value;
}

/** The compression LAVA must undo, from the file name. */
function compression(file: string): string | undefined {
  const ext = path.extname(new URL(file).pathname);
  return { '.gz': 'gz', '.tgz': 'gz', '.xz': 'xz', '.bz2': 'bz2', '.zst': 'zstd' }[ext];
}

function resource(what: string, value: string): Record<string, string> {
  const c = compression(url(what, value));
  return { url: value, ...(c ? { compression: c } : {}) };
}

export function lavaJob(o: LavaJobOptions): Record<string, unknown> {
  if (!/^\/dev\/pmem\d+$/.test(o.pmem)) throw new DaxpinError('lava-usage', `--pmem must be a pmem block device /dev/pmemN, got ${JSON.stringify(o.pmem)}`);
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(o.deviceType)) throw new DaxpinError('lava-usage', `--device-type must be a LAVA device type name, got ${JSON.stringify(o.deviceType)}`);
  if (!BOOT_METHODS.includes(o.bootMethod)) throw new DaxpinError('lava-usage', `--boot-method must be one of ${BOOT_METHODS.join(', ')}, got ${JSON.stringify(o.bootMethod)}`);
  const kernelName = path.basename(new URL(url('--kernel', o.kernel)).pathname) || 'kernel';
  const parameters: Record<string, string> = { PMEM: o.pmem, MATRIX: o.matrix };
  if (o.configs?.length) parameters.CONFIGS = o.configs.join(',');
  if (o.cases?.length) parameters.CASES = o.cases.join(',');
  return {
    device_type: o.deviceType,
    job_name: `daxpin ${kernelName} ${o.pmem}`.slice(0, 200),
    timeouts: { job: { minutes: o.testMinutes + 30 }, action: { minutes: 10 }, connection: { minutes: 2 } },
    priority: 'medium',
    visibility: 'public',
    ...(o.kernelArgs ? { context: { extra_kernel_args: o.kernelArgs } } : {}),
    metadata: { 'daxpin.revision': o.revision, 'daxpin.pmem': o.pmem },
    actions: [
      {
        deploy: {
          to: 'tftp',
          timeout: { minutes: 15 },
          kernel: { url: o.kernel },
          ...(o.ramdisk ? { ramdisk: resource('--ramdisk', o.ramdisk) } : {}),
          ...(o.modules ? { modules: resource('--modules', o.modules) } : {}),
          nfsrootfs: resource('--rootfs', o.rootfs),
          os: 'debian',
        },
      },
      { boot: { method: o.bootMethod, commands: 'nfs', prompts: ['root@[^:]*:[^#]*# '], timeout: { minutes: 10 } } },
      {
        test: {
          timeout: { minutes: o.testMinutes },
          definitions: [{ repository: url('--repository', o.repository), from: 'git', revision: o.revision, path: 'lava/daxpin.yaml', name: 'daxpin', parameters }],
        },
      },
    ],
  };
}

/** The repository and revision of this checkout, for a job that tests exactly this code. */
export function thisCheckout(root: string): { repository?: string; revision?: string } {
  const git = (args: string[]) => {
    try {
      return execFileSync('git', ['-C', root, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return undefined;
    }
  };
  const origin = git(['remote', 'get-url', 'origin']);
  return { repository: origin && /^(https?|git):\/\//.test(origin) ? origin : undefined, revision: git(['rev-parse', 'HEAD']) };
}

/**
 * YAML for plain data (what LAVA job files hold): block mappings and sequences, strings in
 * YAML's double-quoted style (JSON's escapes are valid there), numbers and booleans bare.
 */
export function toYaml(value: unknown, indent = ''): string {
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]\n';
    return value.map((v) => `${indent}-${block(v, `${indent}  `, true)}`).join('');
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value);
    if (entries.length === 0) return '{}\n';
    return entries.map(([k, v]) => `${indent}${scalar(k)}:${block(v, `${indent}  `, false)}`).join('');
  }
  return `${scalar(value)}\n`;
}

function block(v: unknown, indent: string, inSequence: boolean): string {
  const nested = v !== null && typeof v === 'object' && Object.keys(v).length > 0;
  if (!nested) return ` ${toYaml(v, indent)}`;
  // A mapping inside a sequence starts on the dash's line; anything else on the next.
  if (inSequence && !Array.isArray(v)) return ` ${toYaml(v, indent).slice(indent.length)}`;
  return `\n${toYaml(v, indent)}`;
}

function scalar(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v === null || v === undefined) return 'null';
  const s = String(v);
  return /^[A-Za-z_][A-Za-z0-9_.-]*$/.test(s) && !/^(true|false|yes|no|on|off|null|y|n)$/i.test(s) ? s : JSON.stringify(s);
}
