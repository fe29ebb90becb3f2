// Host packages the qemu substrate needs, installed on first use. The guest runs the
// host's root, so the tools daxpin uses inside it (mkfs.xfs, mkfs.ext4, xfs_io) are
// host packages too.


import { hostPackages } from '../host/packages';
import { DaxpinError, reason } from '../errors';
import { runToolOk } from '../host/tool';

/** Debian package → why daxpin needs it: the `vm` rows of the one package list (scripts/packages). */
export const VM_HOST_PACKAGES: Record<string, string> = Object.fromEntries(hostPackages('vm').map((p) => [p.name, p.why]));

/** The packages of `wanted` that dpkg does not report as installed. */
export async function missingPackages(wanted: string[]): Promise<string[]> {
  const missing: string[] = [];
  for (const pkg of wanted) {
    try {
      const { stdout } = await runToolOk('dpkg-query', ['-W', '-f', '${Status}', pkg]);
      if (!stdout.includes('install ok installed')) missing.push(pkg);
    } catch {
      missing.push(pkg);
    }
  }
  return missing;
}

/**
 * Installs whichever of VM_HOST_PACKAGES are missing with apt-get (as root), or with
 * `noInstall` refuses with a one-line error naming them. `log` gets one line before
 * an install starts, since it can take a minute.
 */
export async function ensureHostPackages(options: { noInstall?: boolean; log?: (line: string) => void } = {}): Promise<void> {
  const missing = await missingPackages(Object.keys(VM_HOST_PACKAGES));
  if (missing.length === 0) return;
  const list = missing.join(' ');
  if (options.noInstall) {
    throw new DaxpinError('ENOHOSTPKG', `missing host packages: ${list} (install them: apt-get install ${list})`);
  }
  if (process.getuid?.() !== 0) {
    throw new DaxpinError('ENOHOSTPKG', `missing host packages: ${list}; run as root or: sudo apt-get install ${list}`);
  }
  options.log?.(`daxpin: installing ${list} (${missing.map((p) => VM_HOST_PACKAGES[p]).join('; ')})`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C' };
  // Another apt may be running (unattended upgrades, a parallel setup): wait for its lock.
  const install = ['-y', '-q', '--no-install-recommends', '-o', 'DPkg::Lock::Timeout=600', 'install', ...missing];
  try {
    await runToolOk('apt-get', install, { env });
  } catch {
    // On a fresh machine the package lists may be empty or stale.
    try {
      await runToolOk('apt-get', ['-q', '-o', 'DPkg::Lock::Timeout=600', 'update'], { env });
      await runToolOk('apt-get', install, { env });
    } catch (err) {
      throw new DaxpinError('ENOHOSTPKG', `apt-get install ${list} failed: ${reason(err)}`);
    }
  }
  const still = await missingPackages(missing);
  if (still.length > 0) throw new DaxpinError('ENOHOSTPKG', `apt-get did not install ${still.join(' ')}`);
}
