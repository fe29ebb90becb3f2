// Where lib/vm keeps what it fetches and builds: debs, unpacked kernels, initramfs
// images, the private apt state. Never inside the repo: these are hundreds of MB.

import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** `$XDG_CACHE_HOME/daxpin`, or `~/.cache/daxpin`. */
export function cacheRoot(): string {
  const xdg = process.env.XDG_CACHE_HOME;
  const base = xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.cache');
  return path.join(base, 'daxpin');
}

export async function ensureDir(dir: string): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  return dir;
}

/**
 * Names `<release>-<16 hex digits><suffix>` (suffix a regex source): the versions of one
 * cache entry, each keyed by a hash of the inputs it was built from.
 */
export function versionsOf(release: string, suffix: string): RegExp {
  return new RegExp(`^${release.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-[0-9a-f]{16}${suffix}$`);
}

/**
 * Puts a cache entry in place atomically (a temp file renamed over it), then removes its
 * other versions in the same directory: built from older inputs, never used again.
 */
export async function storeVersion(file: string, data: Buffer, versions: RegExp): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, data);
  await fs.rename(tmp, file);
  const dir = path.dirname(file);
  for (const name of await fs.readdir(dir)) {
    const full = path.join(dir, name);
    if (versions.test(name) && full !== file) await fs.rm(full, { force: true });
  }
}

export async function exists(p: string): Promise<boolean> {
  try {
    await fs.access(p);
    return true;
  } catch {
    return false;
  }
}
