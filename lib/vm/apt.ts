// A private apt state for fetching Debian kernel packages. The mirror comes from the
// machine's own apt sources at run time (no host name is written anywhere), the
// suites are the ones that carry the kernels daxpin wants, and the system's apt
// sources, lists and package status are never touched.

import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { cacheRoot, ensureDir, exists } from './cache';
import { runToolOk } from '../host/tool';
import { DaxpinError, reason } from '../errors';

/** Suites that carry amd64 kernels worth testing, oldest first. Missing ones are skipped. */
export const KERNEL_SUITES = ['bookworm', 'bookworm-backports', 'trixie', 'trixie-backports', 'sid'];

const DEBIAN_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
const SYSTEM_SOURCES = '/etc/apt/sources.list';
const SYSTEM_SOURCE_PARTS = '/etc/apt/sources.list.d';
const UPDATE_MAX_AGE_MS = 12 * 3600 * 1000;

/** One source entry from the machine's apt configuration. */
export interface SourceEntry {
  types: string[];
  uris: string[];
  suites: string[];
  components: string[];
  signedBy: string | null;
  enabled: boolean;
}

/** Parses a deb822 `.sources` file; continuation lines and comments are handled. */
export function parseDeb822Sources(text: string): SourceEntry[] {
  const entries: SourceEntry[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let last: string | null = null;
    for (const line of stanza.split('\n')) {
      if (line.startsWith('#')) continue;
      if (/^\s/.test(line) && last) {
        fields.set(last, `${fields.get(last)}\n${line.trim()}`);
        continue;
      }
      const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
      if (!m) continue;
      last = m[1].toLowerCase();
      fields.set(last, m[2].trim());
    }
    if (!fields.has('uris')) continue;
    const words = (k: string) => (fields.get(k) ?? '').split(/\s+/).filter(Boolean);
    entries.push({
      types: words('types'),
      uris: words('uris'),
      suites: words('suites'),
      components: words('components'),
      signedBy: fields.get('signed-by') ?? null,
      enabled: (fields.get('enabled') ?? 'yes').toLowerCase() !== 'no',
    });
  }
  return entries;
}

/** Parses one-line-style `sources.list` text (`deb [opts] uri suite component…`). */
export function parseOneLineSources(text: string): SourceEntry[] {
  const entries: SourceEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    const m = /^(deb|deb-src)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$/.exec(line);
    if (!m) continue;
    const signedBy = /(?:^|\s)signed-by=(\S+)/.exec(m[2] ?? '');
    entries.push({
      types: [m[1]],
      uris: [m[3]],
      suites: [m[4]],
      components: m[5].split(/\s+/).filter(Boolean),
      signedBy: signedBy ? signedBy[1] : null,
      enabled: true,
    });
  }
  return entries;
}

/**
 * The URIs of the Debian archive among the machine's sources: binary entries that
 * serve `main` of a release suite (not the security archive) and, when they name a
 * keyring, name Debian's — so another vendor's repository is never mistaken for it.
 */
export function debianMirrors(entries: SourceEntry[]): string[] {
  const mirrors = new Set<string>();
  for (const e of entries) {
    if (!e.enabled || !e.types.includes('deb') || !e.components.includes('main')) continue;
    if (!e.suites.some((s) => /^[a-z]+(-updates|-backports)?$/.test(s))) continue;
    if (e.signedBy !== null && !e.signedBy.includes('debian-archive-keyring')) continue;
    for (const uri of e.uris) {
      if (/^(https?|file):/.test(uri)) mirrors.add(uri.replace(/\/+$/, ''));
    }
  }
  return [...mirrors];
}

/** Reads the machine's apt sources and returns its Debian mirror URIs. */
export async function configuredDebianMirrors(): Promise<string[]> {
  const entries: SourceEntry[] = [];
  if (await exists(SYSTEM_SOURCES)) {
    entries.push(...parseOneLineSources(await fs.readFile(SYSTEM_SOURCES, 'utf8')));
  }
  const parts = (await exists(SYSTEM_SOURCE_PARTS)) ? await fs.readdir(SYSTEM_SOURCE_PARTS) : [];
  for (const name of parts.sort()) {
    const text = await fs.readFile(path.join(SYSTEM_SOURCE_PARTS, name), 'utf8');
    if (name.endsWith('.sources')) entries.push(...parseDeb822Sources(text));
    else if (name.endsWith('.list')) entries.push(...parseOneLineSources(text));
  }
  const mirrors = debianMirrors(entries);
  if (mirrors.length === 0) {
    throw new DaxpinError('ENOMIRROR', 'no Debian mirror found in /etc/apt/sources.list{,.d}: cannot fetch kernels');
  }
  return mirrors;
}

/** The sources list for the private state, one line per mirror × suite. */
export function kernelSourcesList(mirrors: string[], suites: string[]): string {
  const lines = [];
  for (const mirror of mirrors) {
    for (const suite of suites) lines.push(`deb [signed-by=${DEBIAN_KEYRING}] ${mirror} ${suite} main`);
  }
  return lines.join('\n') + '\n';
}

interface AptPaths {
  root: string;
  sourcesList: string;
  lists: string;
  cache: string;
  status: string;
  stamp: string;
}

function aptPaths(): AptPaths {
  const root = path.join(cacheRoot(), 'apt');
  return {
    root,
    sourcesList: path.join(root, 'sources.list'),
    lists: path.join(root, 'lists'),
    cache: path.join(root, 'cache'),
    status: path.join(root, 'status'),
    stamp: path.join(root, 'updated.json'),
  };
}

/** `-o` options that point apt at the private state; the rest of the system's apt config (proxies) still applies. */
function aptOptions(p: AptPaths): string[] {
  const opts: Record<string, string> = {
    'Dir::Etc::sourcelist': p.sourcesList,
    'Dir::Etc::sourceparts': '-',
    'Dir::State::Lists': p.lists,
    'Dir::State::status': p.status,
    'Dir::Cache': p.cache,
    // Debian's container images switch the binary cache off; without it every apt-cache call re-reads 30 MB of lists.
    'Dir::Cache::pkgcache': 'pkgcache.bin',
    'Dir::Cache::srcpkgcache': '',
    'APT::Architecture': 'amd64',
    'APT::Architectures': 'amd64',
    'Acquire::Languages': 'none',
    // The state lives under the user's home, which the _apt sandbox user usually cannot enter.
    'APT::Sandbox::User': 'root',
  };
  return Object.entries(opts).flatMap(([k, v]) => ['-o', `${k}=${v}`]);
}

async function apt(tool: 'apt-get' | 'apt-cache', args: string[], cwd?: string) {
  const p = aptPaths();
  try {
    return await runToolOk(tool, [...aptOptions(p), ...args], { cwd, env: { ...process.env, LC_ALL: 'C' } });
  } catch (err) {
    const command = args.filter((a) => !a.startsWith('-'))[0];
    throw new DaxpinError('EAPT', `${tool} ${command}: ${reason(err).replace(/^apt-(get|cache): /, '')}`);
  }
}

interface UpdateStamp {
  at: number;
  mirrors: string[];
  suites: string[];
}

/**
 * Refreshes the private package lists when they are older than 12 h (or `force`).
 * Suites the mirror does not carry are dropped; returns the suites in use.
 */
export async function updateKernelLists(options: { force?: boolean; log?: (line: string) => void } = {}): Promise<string[]> {
  const p = aptPaths();
  const mirrors = await configuredDebianMirrors();
  const stamp = await readStamp(p.stamp);
  const fresh = stamp !== null && Date.now() - stamp.at < UPDATE_MAX_AGE_MS;
  if (!options.force && fresh && sameList(stamp.mirrors, mirrors)) return stamp.suites;

  for (const dir of [path.join(p.lists, 'partial'), path.join(p.cache, 'archives', 'partial')]) await ensureDir(dir);
  if (!(await exists(p.status))) await fs.writeFile(p.status, '');
  await fs.writeFile(p.sourcesList, kernelSourcesList(mirrors, KERNEL_SUITES));
  options.log?.(`daxpin: updating kernel package lists (${KERNEL_SUITES.join(', ')})`);
  // apt-get update fails as a whole when one suite is missing; what it fetched is still good.
  let failure: string | null = null;
  try {
    await apt('apt-get', ['-q', 'update']);
  } catch (err) {
    failure = reason(err);
  }
  const suites = await suitesWithLists();
  if (suites.length === 0) {
    throw new DaxpinError('EAPT', `could not fetch any kernel suite from the Debian mirror: ${failure ?? 'no lists'}`);
  }
  if (failure) options.log?.(`daxpin: kernel package lists partly refreshed (${failure}); using ${suites.join(', ')}`);
  // Later apt calls should not trip over the suites that are not there.
  await fs.writeFile(p.sourcesList, kernelSourcesList(mirrors, suites));
  await fs.writeFile(p.stamp, JSON.stringify({ at: Date.now(), mirrors, suites } satisfies UpdateStamp));
  return suites;
}

async function readStamp(file: string): Promise<UpdateStamp | null> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as UpdateStamp;
  } catch {
    return null;
  }
}

function sameList(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

async function suitesWithLists(): Promise<string[]> {
  const { stdout } = await apt('apt-get', ['indextargets', '--format', '$(RELEASE) $(FILENAME)', 'Identifier: Packages']);
  const present = new Set<string>();
  for (const line of stdout.split('\n')) {
    const [suite, file] = line.trim().split(' ');
    if (suite && file && (await exists(file))) present.add(suite);
  }
  return KERNEL_SUITES.filter((s) => present.has(s));
}

/** One binary package version in the archive. */
export interface ArchivePackage {
  name: string;
  version: string;
  /** Bare package names this version depends on (alternatives and version constraints dropped). */
  depends: string[];
  /** Size of the .deb in bytes. */
  size: number;
  /** Path of the .deb in the archive pool; its basename is the downloaded file's name. */
  filename: string;
  /** Suites carrying this exact version. */
  suites: string[];
}

/** Parses `apt-cache show` output (one deb822 record per version). */
export function parsePackageRecords(text: string): Omit<ArchivePackage, 'suites'>[] {
  const records: Omit<ArchivePackage, 'suites'>[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const field = (k: string) => new RegExp(`^${k}: (.*)$`, 'm').exec(stanza)?.[1].trim() ?? '';
    const name = field('Package');
    if (!name) continue;
    records.push({
      name,
      version: field('Version'),
      depends: field('Depends')
        .split(',')
        .map((d) => d.trim().split(/[\s|(]/)[0])
        .filter(Boolean),
      size: Number(field('Size')) || 0,
      filename: field('Filename'),
    });
  }
  return records;
}

/** Parses `apt-cache madison` lines into "name version" → suites. */
export function parseMadison(text: string): Map<string, string[]> {
  const suites = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const cols = line.split('|').map((c) => c.trim());
    if (cols.length < 3) continue;
    const suite = /\s(\S+?)\/\S+\s+\S+\s+Packages$/.exec(cols[2])?.[1];
    if (!suite) continue;
    const key = `${cols[0]} ${cols[1]}`;
    suites.set(key, [...(suites.get(key) ?? []), suite]);
  }
  return suites;
}

/**
 * Every version of the packages that ship amd64 kernels: monolithic
 * `linux-image-<release>[-unsigned]`, and the split `linux-binary[-unsigned]-<release>`
 * + `linux-modules-<release>` (+ `linux-base-<release>`: config, modules.builtin) of newer kernels. Flavours other than plain amd64
 * (cloud, rt) are left out: they lack drivers daxpin needs.
 */
export async function kernelPackages(options: { log?: (line: string) => void } = {}): Promise<ArchivePackage[]> {
  await updateKernelLists(options);
  const { stdout: names } = await apt('apt-cache', ['pkgnames', 'linux-']);
  const wanted = names
    .split('\n')
    .filter((n) => /^linux-(image|binary|binary-unsigned|modules|base)-\d[^ ]*-amd64(-unsigned)?$/.test(n))
    .filter((n) => !/-(cloud|rt)-amd64/.test(n));
  if (wanted.length === 0) return [];
  // Names that are only provided by others have no record; madison skips them silently.
  const { stdout: madison } = await apt('apt-cache', ['madison', ...wanted]);
  const suites = parseMadison(madison);
  const real = [...new Set([...suites.keys()].map((k) => k.split(' ')[0]))];
  const { stdout: show } = await apt('apt-cache', ['show', ...real]);
  return parsePackageRecords(show).map((r) => ({ ...r, suites: suites.get(`${r.name} ${r.version}`) ?? [] }));
}

/** Downloads `name=version` into `~/.cache/daxpin/debs` (once) and returns the .deb's path. */
export async function downloadPackage(pkg: Pick<ArchivePackage, 'name' | 'version' | 'filename'>): Promise<string> {
  const debs = await ensureDir(path.join(cacheRoot(), 'debs'));
  const target = path.join(debs, path.basename(pkg.filename));
  if (await exists(target)) return target;
  // apt-get download writes into its cwd under a name of its own; a private directory
  // makes the result unambiguous and keeps half-downloaded files out of debs/.
  const staging = await fs.mkdtemp(path.join(debs, '.download-'));
  try {
    await apt('apt-get', ['-q', 'download', `${pkg.name}=${pkg.version}`], staging);
    const [file] = (await fs.readdir(staging)).filter((f) => f.endsWith('.deb'));
    if (!file) throw new DaxpinError('EAPT', `apt-get download ${pkg.name}=${pkg.version} produced no .deb`);
    await fs.rename(path.join(staging, file), target);
  } finally {
    await fs.rm(staging, { recursive: true, force: true });
  }
  return target;
}
