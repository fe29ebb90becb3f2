// What the guest sees of the host and what it is given to run: the path rules of its
// root (the host's, shared read-only, with /tmp, /run, /dev, /proc and /sys mounted
// afresh), the command script its init runs, and the page cache warm-up list.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { singleQuote } from '../host/shell';

/** The emulated pmem device every config is formatted on, in turn. */
export const GUEST_DEVICE = '/dev/pmem0';
/** The guest's host name (set by its init script): what its own records carry. */
export const GUEST_HOSTNAME = 'daxpin-guest';

/** Directories the guest's init mounts afresh over the host's: nothing of the host's is visible there. */
export const GUEST_PRIVATE_DIRS = ['/tmp', '/run', '/dev', '/proc', '/sys'];
/** Of those, the ones whose host content the guest can be given back (bound over the tmpfs). */
const GUEST_KEEPABLE_DIRS = ['/tmp', '/run'];

/** Why the guest could not see `p` (a host path it must run or read), or null. */
export function hiddenInGuest(p: string): string | null {
  const dir = GUEST_PRIVATE_DIRS.find((d) => p === d || p.startsWith(`${d}/`));
  return dir ? `${p} is under ${dir}, which the guest mounts afresh` : null;
}

/** A directory the guest must see (daxpin's root, node's prefix, the cwd): bound into the guest when hidden there. */
export function keepInGuest(dir: string): string | null {
  const hidden = GUEST_KEEPABLE_DIRS.find((d) => dir.startsWith(`${d}/`));
  return hidden ? dir : null;
}

/** The script the guest's init runs in the chroot: a clean environment, the cwd, the command. */
export function commandScript(argv: string[], env: Record<string, string>, cwd: string): string {
  const assignments = Object.entries(env).map(([k, v]) => singleQuote(`${k}=${v}`));
  return ['#!/bin/sh', `cd ${singleQuote(cwd)} || exit 125`, `exec env -i ${[...assignments, ...argv.map(singleQuote)].join(' ')}`, ''].join('\n');
}

/**
 * What the guest command reads first, in that order, for the init's page cache warm-up
 * (guest-init.sh): node, daxpin's package.json, compiled modules and addon, and
 * commander. Read cold over 9p under TCG they slow the command's start by seconds
 * (bench/README.md); read while the guest loads its kernel modules they cost it nothing.
 */
export function guestPrefetch(node: string, repoRoot: string): string[] {
  const files = (dir: string, ext: RegExp): string[] => {
    try {
      return fs
        .readdirSync(dir, { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile() && ext.test(e.name))
        .map((e) => path.join(e.parentPath, e.name))
        .sort();
    } catch {
      return [];
    }
  };
  return [
    fs.realpathSync(node),
    path.join(repoRoot, 'package.json'),
    ...files(path.join(repoRoot, 'node_modules', 'commander'), /\.(js|json)$/),
    ...files(path.join(repoRoot, 'dist', 'lib'), /\.js$/),
    ...files(path.join(repoRoot, 'build', 'Release'), /\.node$/),
  ];
}
