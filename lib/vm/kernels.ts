// Kernel specs → a bootable kernel on disk: `{release, vmlinuz, modulesDir}`.
//
// A SPEC is one of
//   - a version prefix resolved against the Debian archive, highest match wins:
//     `6.1`, `6.12`, `6.18`, `7.3`, `6.1.176`; or an exact release (`6.1.0-50-amd64`);
//   - `latest`: the highest version the archive has;
//   - `all`: the newest package of every series (major.minor) the archive has;
//   - a series glob, `6.12.*`: every package of that series;
//   - a `.deb` path, or comma-separated .debs of a split kernel: linux-binary +
//     linux-modules (+ linux-base, whose modules.builtin lets modprobe accept built-ins);
//   - a directory: a package tree (`boot/vmlinuz-*`, `[usr/]lib/modules/<release>/`) or
//     a kernel build tree (`arch/x86/boot/bzImage`, modules optional).
// Packages are unpacked once into `~/.cache/daxpin/kernels/<release>/`.

import * as fsSync from 'node:fs';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ArchivePackage, downloadPackage, KERNEL_SUITES, kernelPackages } from './apt';
import { cacheRoot, ensureDir, exists } from './cache';
import { runToolOk } from '../host/tool';
import { DaxpinError, reason } from '../errors';
import { compareVersions } from '../versions';

export interface Kernel {
  /** What `uname -r` says in the guest. */
  release: string;
  vmlinuz: string;
  /** `…/lib/modules/<release>`; null for a kernel with everything built in. */
  modulesDir: string | null;
  /** Where it came from: Debian package version, or the path it was given as. */
  origin: string;
}

/** A kernel the archive can provide completely (image and modules). */
export interface ArchiveKernel {
  release: string;
  /** Debian package version, e.g. `6.1.176-1`. */
  version: string;
  /** Upstream version, e.g. `6.1.176`. */
  upstream: string;
  suites: string[];
  /** The packages to download and unpack for it. */
  packages: ArchivePackage[];
}

export interface KernelListing {
  available: ArchiveKernel[];
  cached: Kernel[];
  /** Why the archive could not be listed (offline, no mirror), else null. */
  archiveError: string | null;
}

/** `6.1.176-1~bpo12+1` → `6.1.176`. */
export function upstreamVersion(debianVersion: string): string {
  return debianVersion.replace(/^\d+:/, '').replace(/-[^-]*$/, '');
}

/** Whether `prefix` names `upstream` by whole components: `6.1` matches `6.1.176`, not `6.12.3`. */
export function matchesVersionPrefix(prefix: string, upstream: string): boolean {
  return upstream === prefix || upstream.startsWith(`${prefix}.`);
}

/**
 * Groups archive packages into complete kernels. Unsigned builds are preferred (the
 * signature is of no use to qemu); a split kernel needs its linux-modules package in
 * the same version, which the archive does not always still carry.
 */
export function completeKernels(packages: ArchivePackage[]): ArchiveKernel[] {
  const byKey = new Map<string, ArchivePackage>();
  for (const p of packages) byKey.set(`${p.name} ${p.version}`, p);
  const find = (name: string, version: string) => byKey.get(`${name} ${version}`);

  const kernels = new Map<string, ArchiveKernel>();
  for (const p of packages) {
    const m = /^linux-(?:image|binary(?:-unsigned)?|modules|base)-(\d.*-amd64)(?:-unsigned)?$/.exec(p.name);
    if (!m) continue;
    const release = m[1];
    const key = `${release} ${p.version}`;
    if (kernels.has(key)) continue;
    const v = p.version;
    const monolithic = [find(`linux-image-${release}-unsigned`, v), find(`linux-image-${release}`, v)].find(
      (img) => img && !img.depends.includes(`linux-binary-${release}`),
    );
    const binary = find(`linux-binary-unsigned-${release}`, v) ?? find(`linux-binary-${release}`, v);
    const modules = find(`linux-modules-${release}`, v);
    // linux-base carries config and modules.builtin (so modprobe knows what is built in).
    const base = find(`linux-base-${release}`, v);
    const split = binary && modules ? [binary, modules, ...(base ? [base] : [])] : null;
    const chosen = monolithic ? [monolithic] : split;
    if (!chosen) continue;
    const suites = [...new Set(chosen.flatMap((c) => c.suites))];
    kernels.set(key, { release, version: v, upstream: upstreamVersion(v), suites, packages: chosen });
  }
  return [...kernels.values()].sort(compareArchiveKernels);
}

/** Oldest first; for one upstream version, the build from the later suite last. */
function compareArchiveKernels(a: ArchiveKernel, b: ArchiveKernel): number {
  const newestSuite = (k: ArchiveKernel) => Math.max(...k.suites.map((s) => KERNEL_SUITES.indexOf(s)));
  return compareVersions(a.upstream, b.upstream) || newestSuite(a) - newestSuite(b);
}

/** A kernel's series: `6.12.57` (or a release, `6.12.57+deb12-amd64`) → `6.12`. */
export function kernelSeries(version: string): string {
  const m = /^(\d+)\.(\d+)/.exec(version);
  return m ? `${m[1]}.${m[2]}` : version;
}

/**
 * The archive kernels a spec names, oldest first: `all` the newest of every series,
 * `6.12.*` every package of 6.12 (one per release), anything else what
 * pickArchiveKernel picks.
 */
export function archiveKernelsFor(spec: string, kernels: ArchiveKernel[]): ArchiveKernel[] {
  const newestPerRelease = (ks: ArchiveKernel[]) => [...new Map(ks.map((k) => [k.release, k])).values()];
  if (spec === 'all') return [...new Map(kernels.map((k) => [kernelSeries(k.upstream), k])).values()];
  if (spec.endsWith('.*')) return newestPerRelease(kernels.filter((k) => kernelSeries(k.upstream) === spec.slice(0, -2)));
  const one = pickArchiveKernel(spec, kernels);
  return one ? [one] : [];
}

/** The archive kernel a version spec names: the highest match, or null. */
export function pickArchiveKernel(spec: string, kernels: ArchiveKernel[]): ArchiveKernel | null {
  const matches = spec === 'latest' ? kernels : kernels.filter((k) => k.release === spec || matchesVersionPrefix(spec, k.upstream));
  return matches.length > 0 ? matches[matches.length - 1] : null;
}

export async function archiveKernels(options: { log?: (line: string) => void } = {}): Promise<ArchiveKernel[]> {
  return completeKernels(await kernelPackages(options));
}

function kernelsDir(): string {
  return path.join(cacheRoot(), 'kernels');
}

interface Manifest {
  release: string;
  vmlinuz: string;
  modulesDir: string | null;
  origin: string;
}

async function readManifest(dir: string): Promise<Kernel | null> {
  try {
    const m = JSON.parse(await fs.readFile(path.join(dir, 'kernel.json'), 'utf8')) as Manifest;
    return {
      release: m.release,
      vmlinuz: path.join(dir, m.vmlinuz),
      modulesDir: m.modulesDir === null ? null : path.join(dir, m.modulesDir),
      origin: m.origin,
    };
  } catch {
    return null;
  }
}

/** Kernels already unpacked in the cache, oldest first. */
export async function cachedKernels(): Promise<Kernel[]> {
  const dir = kernelsDir();
  const names = (await exists(dir)) ? await fs.readdir(dir) : [];
  const kernels: Kernel[] = [];
  for (const name of names) {
    if (name.startsWith('.')) continue;
    const k = await readManifest(path.join(dir, name));
    if (k) kernels.push(k);
  }
  return kernels.sort((a, b) => compareVersions(a.release, b.release));
}

/** What `daxpin kernels` shows: what the archive offers and what is unpacked already. */
export async function listKernels(options: { log?: (line: string) => void } = {}): Promise<KernelListing> {
  const cached = await cachedKernels();
  try {
    return { available: await archiveKernels(options), cached, archiveError: null };
  } catch (err) {
    return { available: [], cached, archiveError: (err as Error).message };
  }
}

/**
 * The release a bzImage was built as, read from its setup header: the
 * `kernel_version` field (offset 0x20e) points at "6.1.0-50-amd64 (…) #1 SMP …".
 */
export async function bzImageRelease(vmlinuz: string): Promise<string> {
  const fh = await fs.open(vmlinuz, 'r');
  try {
    const header = Buffer.alloc(0x8000);
    await fh.read(header, 0, header.length, 0);
    if (header.toString('latin1', 0x202, 0x206) !== 'HdrS') {
      throw new DaxpinError('EBADKERNEL', `${vmlinuz} is not a bzImage`);
    }
    const at = header.readUInt16LE(0x20e) + 0x200;
    const release = header.toString('latin1', at, header.indexOf(0, at)).split(' ')[0];
    if (!release) throw new DaxpinError('EBADKERNEL', `${vmlinuz} has no version string`);
    return release;
  } finally {
    await fh.close();
  }
}

/** Finds the kernel image and its modules in an unpacked package or build tree. */
export async function locateKernel(root: string): Promise<Omit<Kernel, 'origin'>> {
  const candidates: string[] = [path.join(root, 'arch/x86/boot/bzImage'), path.join(root, 'vmlinuz')];
  for (const dir of ['boot', 'lib/modules', 'usr/lib/modules']) {
    const full = path.join(root, dir);
    if (!(await exists(full))) continue;
    for (const name of await fs.readdir(full)) {
      if (dir === 'boot' && name.startsWith('vmlinuz-')) candidates.push(path.join(full, name));
      else if (dir !== 'boot') candidates.push(path.join(full, name, 'vmlinuz'), path.join(full, name, 'vmlinuz.unsigned'));
    }
  }
  let vmlinuz: string | undefined;
  for (const c of candidates) {
    if (await exists(c)) {
      vmlinuz = c;
      break;
    }
  }
  if (!vmlinuz) throw new DaxpinError('EBADKERNEL', `no kernel image (vmlinuz, bzImage) under ${root}`);
  const release = await bzImageRelease(vmlinuz);
  let modulesDir: string | null = null;
  for (const dir of ['lib/modules', 'usr/lib/modules']) {
    const full = path.join(root, dir, release);
    if (await exists(path.join(full, 'kernel'))) modulesDir = full;
  }
  return { release, vmlinuz, modulesDir };
}

/** Unpacks .deb files into the cache as one kernel; replaces an older unpack of the same release. */
async function unpackDebs(debs: string[], origin: string): Promise<Kernel> {
  const root = await ensureDir(kernelsDir());
  const staging = await fs.mkdtemp(path.join(root, '.unpack-'));
  try {
    for (const deb of debs) {
      try {
        await runToolOk('dpkg-deb', ['-x', deb, staging]);
      } catch (err) {
        throw new DaxpinError('EBADKERNEL', `cannot unpack ${deb}: ${reason(err)}`);
      }
    }
    const found = await locateKernel(staging);
    if (found.modulesDir === null) {
      throw new DaxpinError('EBADKERNEL', `${debs.join(' + ')} has no modules for ${found.release} (pass the linux-modules .deb too)`);
    }
    const manifest: Manifest = {
      release: found.release,
      vmlinuz: path.relative(staging, found.vmlinuz),
      modulesDir: path.relative(staging, found.modulesDir),
      origin,
    };
    await fs.writeFile(path.join(staging, 'kernel.json'), JSON.stringify(manifest, null, 2) + '\n');
    const final = path.join(root, found.release);
    await fs.rm(final, { recursive: true, force: true });
    await fs.rename(staging, final);
    return (await readManifest(final)) as Kernel;
  } finally {
    await fs.rm(staging, { recursive: true, force: true });
  }
}

async function fromArchive(k: ArchiveKernel, log?: (line: string) => void): Promise<Kernel> {
  const origin = `${k.packages.map((p) => p.name).join(' + ')} ${k.version}`;
  const cached = await readManifest(path.join(kernelsDir(), k.release));
  if (cached && cached.origin === origin) return cached;
  const mb = Math.round(k.packages.reduce((n, p) => n + p.size, 0) / 1e6);
  log?.(`daxpin: fetching kernel ${k.release} (${k.version}, ${mb} MB)`);
  const debs = [];
  for (const p of k.packages) debs.push(await downloadPackage(p));
  return unpackDebs(debs, origin);
}

/** The best cached kernel for a version spec, for when the archive cannot be asked. */
function pickCached(spec: string, cached: Kernel[]): Kernel | null {
  const matches = spec === 'latest' ? cached : cached.filter((k) => k.release === spec || matchesVersionPrefix(spec, k.release.split(/[-+]/)[0]));
  return matches.length > 0 ? matches[matches.length - 1] : null;
}

/** Resolves a SPEC (see the top of this file) to a kernel on disk, fetching it if needed. */
export async function resolveKernel(spec: string, options: { log?: (line: string) => void } = {}): Promise<Kernel> {
  if (spec.endsWith('.deb') || spec.includes('.deb,')) {
    const debs = spec.split(',').map((d) => path.resolve(d));
    for (const deb of debs) if (!(await exists(deb))) throw new DaxpinError('ENOKERNEL', `no such kernel package: ${deb}`);
    // Debian names its .debs by package and version, so the names identify the kernel.
    const origin = debs.map((d) => path.basename(d)).join(' + ');
    return (await cachedKernels()).find((k) => k.origin === origin) ?? unpackDebs(debs, origin);
  }
  if (spec.includes('/') || (await isDirectory(spec))) {
    const dir = path.resolve(spec);
    if (!(await isDirectory(dir))) throw new DaxpinError('ENOKERNEL', `no such kernel directory: ${dir}`);
    return (await readManifest(dir)) ?? { ...(await locateKernel(dir)), origin: dir };
  }
  if (spec !== 'latest' && !/^\d+(\.\d+)*$/.test(spec) && !/^\d+\.\d+.*-amd64$/.test(spec)) {
    throw new DaxpinError('ENOKERNEL', `"${spec}" is not a kernel spec (a version like 6.12, latest, a .deb or a directory)`);
  }
  let available: ArchiveKernel[];
  try {
    available = await archiveKernels(options);
  } catch (err) {
    const cached = pickCached(spec, await cachedKernels());
    if (cached) {
      options.log?.(`daxpin: ${reason(err)}; using cached kernel ${cached.release}`);
      return cached;
    }
    throw err;
  }
  const chosen = pickArchiveKernel(spec, available);
  if (chosen) return fromArchive(chosen, options.log);
  // A release the archive has dropped since it was fetched still boots from the cache.
  const unpacked = (await cachedKernels()).find((k) => k.release === spec);
  if (unpacked) return unpacked;
  throw new DaxpinError('ENOKERNEL', await noMatchMessage(spec));
}

/**
 * Resolves a spec that may name many kernels (`all`, `6.12.*`) to kernels on disk,
 * fetching what is missing; any other spec is one kernel (resolveKernel). Without the
 * archive, the cached kernels the spec names stand in.
 */
export async function resolveKernels(spec: string, options: { log?: (line: string) => void } = {}): Promise<Kernel[]> {
  if (spec !== 'all' && !spec.endsWith('.*')) return [await resolveKernel(spec, options)];
  let available: ArchiveKernel[];
  try {
    available = await archiveKernels(options);
  } catch (err) {
    const cached = cachedKernelsFor(spec, await cachedKernels());
    if (cached.length === 0) throw err;
    options.log?.(`daxpin: ${reason(err)}; using cached kernels ${cached.map((k) => k.release).join(', ')}`);
    return cached;
  }
  const chosen = archiveKernelsFor(spec, available);
  if (chosen.length === 0) throw new DaxpinError('ENOKERNEL', `no Debian kernel package matches "${spec}"`);
  const kernels: Kernel[] = [];
  for (const k of chosen) kernels.push(await fromArchive(k, options.log));
  return kernels;
}

/** The cached kernels a many-kernel spec names, for when the archive cannot be asked. */
function cachedKernelsFor(spec: string, cached: Kernel[]): Kernel[] {
  const series = (k: Kernel) => kernelSeries(k.release);
  if (spec === 'all') return [...new Map(cached.map((k) => [series(k), k])).values()];
  return cached.filter((k) => series(k) === spec.slice(0, -2));
}

/** Says why a version has no kernel: the archive may carry its image but no longer its modules. */
async function noMatchMessage(spec: string): Promise<string> {
  const partial = (await kernelPackages())
    .filter((p) => matchesVersionPrefix(spec, upstreamVersion(p.version)) && p.name.startsWith('linux-image-'))
    .sort((a, b) => compareVersions(upstreamVersion(a.version), upstreamVersion(b.version)))
    .pop();
  if (partial) {
    return `no complete Debian kernel matches "${spec}": ${partial.name} ${partial.version} needs a linux-modules package the archive no longer has`;
  }
  return `no Debian kernel package matches "${spec}"`;
}

async function isDirectory(p: string): Promise<boolean> {
  try {
    return (await fs.stat(p)).isDirectory();
  } catch {
    return false;
  }
}

export type KernelSpecKind = 'latest' | 'all' | 'series' | 'version' | 'release' | 'deb' | 'dir';

/**
 * Checks the form of kernel specs without fetching anything: `latest`, a version
 * prefix (`6.1`, `6.12.9`), an exact Debian release (`6.1.0-50-amd64`), existing .deb
 * file(s) (comma-separated for split packages) or an existing directory. Duplicates
 * are dropped. Throws a DaxpinError naming the first bad one.
 */
export function parseKernelSpecs(specs: string[]): { spec: string; kind: KernelSpecKind }[] {
  const out: { spec: string; kind: KernelSpecKind }[] = [];
  for (const raw of specs) {
    const spec = raw.trim();
    const kind = specKind(spec);
    if (!out.some((o) => o.spec === spec)) out.push({ spec, kind });
  }
  return out;
}

function specKind(spec: string): KernelSpecKind {
  if (spec === 'latest') return 'latest';
  if (spec === 'all') return 'all';
  if (/^\d+\.\d+\.\*$/.test(spec)) return 'series';
  if (/^\d+(\.\d+)*$/.test(spec)) return 'version';
  if (/^\d+\.\d+\S*-amd64$/.test(spec) && !spec.includes('/')) return 'release';
  if (spec.endsWith('.deb') || spec.includes('.deb,')) {
    for (const deb of spec.split(',')) {
      if (!fsSync.existsSync(deb)) throw new DaxpinError('EUSAGE', `--kernel ${spec}: no such file ${deb}`);
    }
    return 'deb';
  }
  if (spec !== '' && isDirectorySync(spec)) return 'dir';
  if (spec.includes('/')) throw new DaxpinError('EUSAGE', `--kernel ${spec}: no such directory`);
  throw new DaxpinError(
    'EUSAGE',
    `"${spec}" is not a kernel spec: give a version (6.1, 6.12, 7.3), latest, all, a series (6.12.*), a release (6.1.0-50-amd64), .deb file(s) or a kernel directory`,
  );
}

function isDirectorySync(p: string): boolean {
  try {
    return fsSync.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/**
 * What `daxpin kernels` prints: each series the archive has, newest first within it
 * (`--kernel all` boots the first of each line, `--kernel 6.12.*` the whole line), and
 * what is unpacked in the cache.
 */
export function formatKernelListing(l: KernelListing): string[] {
  const cached = new Set(l.cached.map((k) => k.release));
  const bySeries = new Map<string, ArchiveKernel[]>();
  for (const k of l.available) bySeries.set(kernelSeries(k.upstream), [...(bySeries.get(kernelSeries(k.upstream)) ?? []), k]);
  const lines = [`series (newest first; * cached; --kernel all boots the first of each, --kernel <series>.* all of one):`];
  for (const [series, ks] of bySeries) {
    const versions = [...ks].reverse().map((k) => `${k.release}${cached.has(k.release) ? '*' : ''} (${k.version})`);
    lines.push(`  ${series.padEnd(6)} ${versions.join(', ')}`);
  }
  if (l.available.length === 0) lines.push('  (none)');
  lines.push('cached:', ...l.cached.map((k) => `  ${k.release}`));
  if (l.archiveError) lines.push(`archive not reachable: ${l.archiveError}`);
  return lines;
}
