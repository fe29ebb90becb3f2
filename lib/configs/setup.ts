// Preparing a config: a filesystem mounted the way the config says, a test directory
// in it, DAX verified by statx on a probe file, free space filled with ballast so that
// blocks a case frees are reused by the canaries written after it — and a teardown
// that unmounts, runs fsck and frees what was made. Three sources: a device the user
// named (mkfs + mount), a scratch loop file or tmpfs, or a directory already mounted.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CONFIGS, Config } from '../cases/matrix';
import { ConfigRecord } from '../outcome';
import { FS_XFLAG_DAX, MNT_DETACH, SystemError, isDax, isSystemError, native } from '../native';
import { MountEntry, devString, mountOf, readMountinfo } from '../host/mountinfo';
import { UMOUNT_TIMEOUT_MS, once, register, runOwned, settled } from '../host/lifecycle';
import { runTool } from '../host/tool';
import { checkScratchDevice } from './safety';
import { DaxpinError } from '../errors';
import { packageOfTool } from '../host/packages';

/** A config that cannot be set up here (a missing tool, a bad --dir): exit 2. */
const configError = (message: string) => new DaxpinError('ECONFIG', message);

export type Fsck = ConfigRecord['fsck'];

export interface TeardownResult {
  fsck: Fsck;
  cleanupErrors: string[];
}

/** A mount daxpin made, as mount(2) took it: enough to mount it again after an umount op. */
export interface OwnedMount {
  source: string;
  target: string;
  fsType: string;
  data: string;
}

export interface PreparedConfig {
  config: Config;
  mountPoint: string;
  /** Where cases create their files: `<mountPoint>/daxpin-<random>`. */
  testDir: string;
  device: string | null;
  fsType: string;
  /** The options daxpin passed to mount(2) ('' for none). */
  mountOptions: string;
  /** The filesystem's options as the kernel reports them (mountinfo super options). */
  superOptions: string;
  /** statx on a probe file in testDir reported STATX_ATTR_DAX. */
  daxVerified: boolean;
  /** Why a DAX config is not DAX, in the kernel's words when it said something; null otherwise. */
  daxNote: string | null;
  /** Whether files may be given 2 MiB extent size hints (XFS). */
  pmdExtentHint: boolean;
  /** Bytes taken by the ballast file (0 when none). */
  ballastBytes: number;
  /** The mkfs command line daxpin ran; null when it made no filesystem. */
  mkfs: string | null;
  /** The filesystem's geometry as its own tool reports it (xfs_info, dumpe2fs -h); null when none applies. */
  geometry: string | null;
  /** How daxpin mounted the filesystem, for ops that unmount or freeze it; null when daxpin did not mount it (--dir). */
  mount: OwnedMount | null;
  /**
   * Unmount, fsck, free the loop device, remove temp dirs; idempotent, never rejects.
   * What could not be undone (a busy mount detached lazily, a loop device that would
   * not detach) is in cleanupErrors; fsck is not run on a filesystem that did not unmount.
   */
  teardown(): Promise<TeardownResult>;
}

/** Free space left beside the ballast, for the test files and the canaries. */
export const BALLAST_RESERVE_MB = 24;
/** tmpfs has no blocks to reuse: it is just kept small. */
export const TMPFS_SIZE_MB = 64;
/** Scratch loop files are sparse; mkfs.xfs (xfsprogs >= 5.19) refuses filesystems below 300 MB. */
export const SCRATCH_SIZE_MB = 512;
export const XFS_MIN_MB = 300;

const MIB = 1024 * 1024;
const TOOL_DIRS = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'];

function requireRoot(): void {
  if (process.getuid?.() !== 0) throw configError('must run as root (daxpin mounts filesystems and FUSE, and reads /dev/kmsg)');
}

/** Absolute paths of the named tools; a DaxpinError naming the Debian packages when any is missing. */
function requireTools(...names: string[]): Record<string, string> {
  const found: Record<string, string> = {};
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), ...TOOL_DIRS];
  const missing: string[] = [];
  for (const name of names) {
    const dir = dirs.find((d) => {
      try {
        fs.accessSync(path.join(d, name), fs.constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
    if (dir) found[name] = path.join(dir, name);
    else missing.push(name);
  }
  if (missing.length > 0) {
    const packages = [...new Set(missing.map((m) => packageOfTool(m) ?? `(the one with ${m})`))].join(' ');
    throw configError(`${missing.join(', ')} not found; install the Debian package(s) ${packages} (scripts/provision installs them)`);
  }
  return found;
}

interface CommandResult {
  exitCode: number;
  output: string;
}

async function runCommand(file: string, args: string[]): Promise<CommandResult> {
  const r = await runTool(file, args, { env: { ...process.env, LC_ALL: 'C' }, maxBuffer: 16 * MIB });
  return { exitCode: r.exitCode, output: `${r.stdout}${r.stderr}`.trim() || (r.failure ?? '') };
}

function tail(text: string, lines = 20): string {
  return text.split('\n').slice(-lines).join('\n').trim();
}

async function runOk(file: string, args: string[]): Promise<string> {
  const r = await runCommand(file, args);
  if (r.exitCode !== 0) {
    const firstError = r.output.split('\n').find((l) => l.trim() !== '') ?? 'no output';
    throw configError(`${path.basename(file)} ${args.join(' ')} failed (exit ${r.exitCode}): ${firstError.trim()}`);
  }
  return r.output;
}

function errText(err: unknown): string {
  if (isSystemError(err)) return err.code;
  return err instanceof Error ? err.message : String(err);
}

/** Undo steps of one prepared config, each also registered for Ctrl-C. */
class Undo {
  private readonly steps: { name: string; fn: () => Promise<void> | void; unregister: () => void }[] = [];

  get size(): number {
    return this.steps.length;
  }

  add(name: string, fn: () => Promise<void> | void): void {
    // One run of the step, whoever asks first: a signal's teardown may already be
    // running it (it takes the registered entry) when the owner comes to it, and the
    // owner's next step (the rmdir after an unmount) must wait for that run, not start
    // the step again beside it.
    const step = once(async () => fn());
    this.steps.push({ name, fn: step, unregister: register(name, step) });
  }

  /** Run steps newest first until `keep` remain; returns the failures. */
  async runDownTo(keep: number): Promise<string[]> {
    const failures: string[] = [];
    while (this.steps.length > keep) {
      const step = this.steps.pop() as (typeof this.steps)[number];
      step.unregister();
      try {
        await runOwned(step.fn);
      } catch (err) {
        failures.push(`${step.name}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    return failures;
  }
}

const UMOUNT_BUSY_RETRIES = 20;

/**
 * Unmount; when busy, retry briefly, then detach lazily and say so (the fs may still be in use).
 * A freeze op whose worker died before its thaw leaves the filesystem frozen: thaw it first
 * (EINVAL when it is not frozen).
 */
async function unmount(mountPoint: string): Promise<void> {
  await thaw(mountPoint);
  for (let i = 0; ; i++) {
    try {
      await settled(native.startUmount(mountPoint, 0), `umount ${mountPoint}`, UMOUNT_TIMEOUT_MS);
      return;
    } catch (err) {
      if (!isSystemError(err) || err.code !== 'EBUSY') throw err;
      if (i >= UMOUNT_BUSY_RETRIES) {
        await settled(native.startUmount(mountPoint, MNT_DETACH), `umount -l ${mountPoint}`, UMOUNT_TIMEOUT_MS);
        throw new Error(`${mountPoint} was busy; detached lazily`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function thaw(mountPoint: string): Promise<void> {
  let fd: number;
  try {
    fd = fs.openSync(mountPoint, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  } catch {
    return;
  }
  try {
    await settled(native.startThaw(fd), `thaw ${mountPoint}`, UMOUNT_TIMEOUT_MS);
  } catch {
    // EINVAL: not frozen, the usual case.
  } finally {
    fs.closeSync(fd);
  }
}

interface MountAttempt {
  error: SystemError | null;
  /** What the kernel logged about the device while mounting. */
  kernel: string[];
}

/** mount(2), with the kernel's log lines about `devName` (or the fs) captured from /dev/kmsg. */
function mountWithLog(source: string, target: string, fsType: string, data: string, devName: string): MountAttempt {
  let kmsg = -1;
  try {
    kmsg = native.kmsgOpen(true);
  } catch {
    // no /dev/kmsg (unprivileged container): the errno alone must do
  }
  let error: SystemError | null = null;
  try {
    native.mount(source, target, fsType, 0, data);
  } catch (err) {
    if (!isSystemError(err)) throw err;
    error = err;
  }
  const kernel: string[] = [];
  if (kmsg >= 0) {
    const needle = `(${devName})`;
    for (const record of native.kmsgRead(kmsg)) {
      const text = record.slice(record.indexOf(';') + 1).split('\n')[0];
      if (text.includes(needle) || text.startsWith(`${devName}:`)) kernel.push(text);
    }
    fs.closeSync(kmsg);
  }
  return { error, kernel };
}

/** mount -o data for each config's DAX mode, most specific first. */
function daxMountOptions(config: Config): string[] {
  if (config.dax === 'inode') return ['dax=inode'];
  if (config.dax === 'off') return [''];
  return config.fsType === 'ext4' ? ['dax', 'dax=always'] : ['dax=always', 'dax'];
}

function randomName(prefix: string): string {
  return `${prefix}${randomBytes(4).toString('hex')}`;
}

async function setDaxFlag(dir: string): Promise<void> {
  const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    const { xflags, extsize } = native.fsGetXattr(fd);
    await settled(native.startFsSetXattr(fd, xflags | FS_XFLAG_DAX, extsize), 'FS_IOC_FSSETXATTR');
  } finally {
    fs.closeSync(fd);
  }
}

/** Write 4 KiB to a fresh file in `dir` and ask statx whether it is DAX. */
async function probeDax(dir: string): Promise<boolean> {
  const probe = path.join(dir, '.daxpin-probe');
  const fh = await fs.promises.open(probe, 'w');
  try {
    await fh.write(Buffer.alloc(4096, 0x5a), 0, 4096, 0);
    await fh.sync();
  } finally {
    await fh.close();
  }
  const dax = isDax(native.statx(probe));
  await fs.promises.unlink(probe);
  return dax;
}

/** Fill the filesystem with one fallocated, fsynced file, leaving `reserveMb` free. */
async function writeBallast(mountPoint: string, reserveMb: number): Promise<number> {
  const ballast = path.join(mountPoint, 'daxpin-ballast');
  const st = fs.statfsSync(mountPoint);
  let size = Math.floor((st.bavail * st.bsize - reserveMb * MIB) / (2 * MIB)) * 2 * MIB;
  if (size <= 0) return 0;
  const fh = await fs.promises.open(ballast, 'w');
  try {
    for (;;) {
      try {
        await settled(native.startFallocate(fh.fd, 0, 0, size), 'fallocate (ballast)');
        break;
      } catch (err) {
        // metadata for the extents needs room too: back off and try again
        if (!isSystemError(err) || err.code !== 'ENOSPC' || size <= 16 * MIB) throw err;
        size -= 16 * MIB;
      }
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  return size;
}

async function fsckDevice(fsType: 'ext4' | 'xfs', device: string): Promise<NonNullable<Fsck>> {
  const tool = fsType === 'xfs' ? 'xfs_repair' : 'e2fsck';
  const args = fsType === 'xfs' ? ['-n', device] : ['-fn', device];
  const r = await runCommand(requireTools(tool)[tool], args);
  return { tool: `${tool} ${args.join(' ')}`, ok: r.exitCode === 0, exitCode: r.exitCode, output: tail(r.output) };
}

function deviceBytes(device: string): number {
  const dev = devString(fs.statSync(device).rdev);
  return Number(fs.readFileSync(`/sys/dev/block/${dev}/size`, 'utf8').trim()) * 512;
}

/** Makes the filesystem; returns the command line it ran. */
async function mkfs(fsType: 'ext4' | 'xfs', device: string): Promise<string> {
  if (fsType === 'ext4') {
    const { 'mkfs.ext4': tool } = requireTools('mkfs.ext4', 'e2fsck');
    // stride/stripe_width in 4 KiB blocks: 512 = 2 MiB, so the allocator aligns for PMD faults.
    const args = ['-F', '-q', '-b', '4096', '-E', 'stride=512,stripe_width=512', device];
    await runOk(tool, args);
    return [path.basename(tool), ...args].join(' ');
  }
  const { 'mkfs.xfs': tool } = requireTools('mkfs.xfs', 'xfs_repair');
  const bytes = deviceBytes(device);
  if (bytes < XFS_MIN_MB * MIB) {
    throw configError(`${device} has ${Math.floor(bytes / MIB)} MiB; mkfs.xfs needs at least ${XFS_MIN_MB} MB`);
  }
  // su=2m aligns data extents for PMD faults; the log cannot take a 2 MiB stripe unit
  // (max 256 KiB), so give it its own. Below 1 GiB, a 2 MiB stripe unit makes mkfs.xfs
  // choose so many small AGs that the log falls below its 64 MB minimum: use 2 AGs.
  const data = `su=2m,sw=1${bytes < 1024 * MIB ? ',agcount=2' : ''}`;
  const args = ['-f', '-q', '-b', 'size=4096', '-m', 'reflink=1', '-d', data, '-l', 'su=32k', device];
  await runOk(tool, args);
  return [path.basename(tool), ...args].join(' ');
}

/** What the filesystem's own tool says of its geometry; best effort (null when it cannot say). */
async function geometry(fsType: string, device: string | null, mountPoint: string): Promise<string | null> {
  if (fsType === 'xfs') {
    const r = await runCommand('xfs_info', [mountPoint]).catch(() => null);
    return r && r.exitCode === 0 ? r.output.trim() : null;
  }
  if (fsType === 'ext4' && device) {
    const r = await runCommand('dumpe2fs', ['-h', device]).catch(() => null);
    if (!r || r.exitCode !== 0) return null;
    const keep = /^(Filesystem features|Block count|Block size|Reserved GDT blocks|Blocks per group|RAID stride|RAID stripe width|Flex block group size|Inode size):/;
    return r.output.split('\n').filter((l) => keep.test(l)).join('\n');
  }
  return null;
}

interface Layout {
  config: Config;
  device: string | null;
  /** Kernel name of the device (loop0, pmem0), for matching its log lines. */
  devName: string;
  mountPoint: string;
  ballast: boolean;
  reserveMb: number;
}

/**
 * Mount `layout.device` (or tmpfs) at the mount point, make the test dir, verify DAX,
 * write the ballast. Undo steps go on `undo`; the mount step sits at index `mountStep`.
 */
async function mountAndFill(layout: Layout, undo: Undo): Promise<Omit<PreparedConfig, 'teardown' | 'mkfs' | 'geometry'> & { mountStep: number }> {
  const { config, device, devName, mountPoint } = layout;
  const fsType = config.fsType;
  const source = device ?? 'tmpfs';
  const notes: string[] = [];
  let mountOptions = '';
  let mounted = false;
  for (const data of fsType === 'tmpfs' ? [`size=${TMPFS_SIZE_MB}m`] : daxMountOptions(config)) {
    const attempt = mountWithLog(source, mountPoint, fsType, data, devName);
    const said = attempt.kernel.length > 0 ? `: ${attempt.kernel.join('; ')}` : '';
    if (attempt.error === null) {
      mountOptions = data;
      mounted = true;
      const aboutDax = attempt.kernel.filter((line) => /dax/i.test(line));
      if (aboutDax.length > 0) notes.push(`mount -o ${data}: ${aboutDax.join('; ')}`);
      break;
    }
    if (config.dax === 'off' || fsType === 'tmpfs') {
      throw configError(`mount -t ${fsType}${data ? ` -o ${data}` : ''} ${source} failed: ${attempt.error.code}${said}`);
    }
    notes.push(`mount -o ${data} failed with ${attempt.error.code}${said}`);
  }
  if (!mounted) {
    // The kernel refused DAX on this device: mount without it and record why.
    const attempt = mountWithLog(source, mountPoint, fsType, '', devName);
    if (attempt.error !== null) {
      throw configError(`mount -t ${fsType} ${source} failed: ${attempt.error.code}${attempt.kernel.length ? `: ${attempt.kernel.join('; ')}` : ''}`);
    }
    notes.push('mounted without DAX');
  }
  const mountStep = undo.size;
  undo.add(`unmount ${mountPoint}`, () => unmount(mountPoint));

  const testDir = path.join(mountPoint, randomName('daxpin-'));
  fs.mkdirSync(testDir);
  if (config.dax === 'inode') {
    try {
      await setDaxFlag(testDir);
    } catch (err) {
      notes.push(`setting FS_XFLAG_DAX on the test dir failed with ${errText(err)}`);
    }
  }
  const daxVerified = await probeDax(testDir);
  if (config.dax !== 'off' && !daxVerified && notes.length === 0) notes.push('statx on a probe file does not report STATX_ATTR_DAX');
  const ballastBytes = layout.ballast ? await writeBallast(mountPoint, layout.reserveMb) : 0;
  const entry = readMountinfo().find((e) => e.mountPoint === mountPoint);
  return {
    config,
    mountPoint,
    testDir,
    device,
    fsType,
    mountOptions,
    superOptions: entry?.superOptions ?? '',
    daxVerified,
    daxNote: config.dax !== 'off' && !daxVerified ? notes.join('; ') : null,
    pmdExtentHint: fsType === 'xfs',
    ballastBytes,
    mount: { source, target: mountPoint, fsType, data: mountOptions },
    mountStep,
  };
}

async function prepareMounted(
  config: Config,
  device: string | null,
  workDir: string,
  reserveMb: number,
  undo: Undo,
): Promise<PreparedConfig> {
  try {
    const mkfsLine = device !== null && config.fsType !== 'tmpfs' ? await mkfs(config.fsType, device) : null;
    fs.mkdirSync(workDir, { recursive: true });
    const mountPoint = fs.mkdtempSync(path.join(workDir, `mnt-${config.name}-`));
    undo.add(`remove ${mountPoint}`, () => fs.rmdirSync(mountPoint));
    const devName = device ? path.basename(fs.realpathSync(device)) : 'tmpfs';
    const { mountStep, ...mounted } = await mountAndFill({ config, device, devName, mountPoint, ballast: config.fsType !== 'tmpfs', reserveMb }, undo);
    const prepared = { ...mounted, mkfs: mkfsLine, geometry: await geometry(config.fsType, device, mountPoint) };
    const teardown = once(async (): Promise<TeardownResult> => {
      const failures = await undo.runDownTo(mountStep);
      let fsck: Fsck = null;
      if (device !== null && (config.fsType === 'ext4' || config.fsType === 'xfs')) {
        fsck =
          failures.length === 0
            ? await fsckDevice(config.fsType, device)
            : { tool: config.fsType === 'xfs' ? 'xfs_repair' : 'e2fsck', ok: false, exitCode: -1, output: `not run: ${failures.join('; ')}` };
      }
      failures.push(...(await undo.runDownTo(0)));
      return { fsck, cleanupErrors: failures };
    });
    return { ...prepared, teardown };
  } catch (err) {
    await undo.runDownTo(0);
    throw err;
  }
}

export interface DeviceOptions {
  workDir: string;
  reserveMb?: number;
}

/** Format a device the user named (after the safety check) and mount it for `config`. */
export async function prepareOnDevice(config: Config, device: string, opts: DeviceOptions): Promise<PreparedConfig> {
  requireRoot();
  if (config.fsType === 'tmpfs') return prepareScratch(config, { workDir: opts.workDir });
  const real = await checkScratchDevice(device);
  return prepareMounted(config, real, opts.workDir, opts.reserveMb ?? BALLAST_RESERVE_MB, new Undo());
}

export interface ScratchOptions {
  workDir: string;
  /** Size of the sparse loop file; XFS scratch files are at least SCRATCH_SIZE_MB. */
  sizeMb?: number;
  reserveMb?: number;
}

/** A loop device over a sparse file in workDir (ext4, xfs), or a small tmpfs. */
export async function prepareScratch(config: Config, opts: ScratchOptions): Promise<PreparedConfig> {
  requireRoot();
  const reserveMb = opts.reserveMb ?? BALLAST_RESERVE_MB;
  const undo = new Undo();
  if (config.fsType === 'tmpfs') return prepareMounted(config, null, opts.workDir, reserveMb, undo);
  const { losetup } = requireTools('losetup', ...(config.fsType === 'xfs' ? ['mkfs.xfs', 'xfs_repair'] : ['mkfs.ext4', 'e2fsck']));
  const sizeMb = config.fsType === 'xfs' ? Math.max(opts.sizeMb ?? SCRATCH_SIZE_MB, SCRATCH_SIZE_MB) : (opts.sizeMb ?? SCRATCH_SIZE_MB);
  let loop: string;
  try {
    fs.mkdirSync(opts.workDir, { recursive: true });
    const image = path.join(opts.workDir, `${randomName(`${config.name}-`)}.img`);
    fs.writeFileSync(image, '');
    undo.add(`remove ${image}`, () => fs.rmSync(image, { force: true }));
    fs.truncateSync(image, sizeMb * MIB);
    // Registered before losetup runs: a signal mid-attach waits for it, then detaches.
    const attaching = runOk(losetup, ['--find', '--show', image]);
    undo.add(`detach the loop device of ${image}`, async () => {
      await attaching.catch(() => undefined);
      await detachLoops(losetup, image);
    });
    loop = (await attaching).trim();
    await checkScratchDevice(loop);
  } catch (err) {
    await undo.runDownTo(0);
    throw err;
  }
  return prepareMounted(config, loop, opts.workDir, reserveMb, undo);
}

/** Detach every loop device backed by `image` (`losetup -j`). */
async function detachLoops(losetup: string, image: string): Promise<void> {
  const listing = await runOk(losetup, ['-j', image]);
  for (const line of listing.split('\n')) {
    const loop = line.split(':')[0].trim();
    if (loop.startsWith('/dev/loop')) await runOk(losetup, ['-d', loop]);
  }
}

function knownFsType(fsType: string): fsType is Config['fsType'] {
  return fsType === 'ext4' || fsType === 'xfs' || fsType === 'tmpfs';
}

function configFor(fsType: Config['fsType'], entry: MountEntry, dax: boolean): Config {
  const daxAlways = /(^|,)dax(=always)?(,|$)/.test(entry.superOptions);
  const name = !dax ? fsType : fsType === 'xfs' && !daxAlways ? 'xfs-dax-inode' : `${fsType}-dax`;
  const config = CONFIGS.find((c) => c.name === name);
  if (!config) throw configError(`no config for ${fsType}${dax ? ' with DAX' : ''}`);
  return config;
}

/**
 * Use a directory on an already-mounted filesystem (--dir): no mkfs, no ballast; the
 * config is `configName` or derived from the filesystem and a statx probe. Teardown
 * removes only daxpin's own subdirectory.
 */
export async function prepareExistingDir(dir: string, configName?: string): Promise<PreparedConfig> {
  requireRoot();
  let real: string;
  try {
    real = fs.realpathSync(dir);
  } catch {
    throw configError(`--dir ${dir} does not exist`);
  }
  if (!fs.statSync(real).isDirectory()) throw configError(`--dir ${dir} is not a directory`);
  if (fs.statSync(real).dev === fs.statSync('/').dev) {
    throw configError(`--dir ${dir} is on the root filesystem; mount a filesystem for daxpin there (or use --scratch or --device)`);
  }
  const entry = mountOf(real);
  if (!entry) throw configError(`--dir ${dir}: no mount found for it in /proc/self/mountinfo`);
  if (!knownFsType(entry.fsType)) throw configError(`--dir ${dir} is on ${entry.fsType}; daxpin runs on ext4, xfs and tmpfs`);
  const fsType = entry.fsType;
  let given: Config | undefined;
  if (configName !== undefined) {
    given = CONFIGS.find((c) => c.name === configName);
    if (!given) throw configError(`unknown config ${configName}; known: ${CONFIGS.map((c) => c.name).join(', ')}`);
    if (given.fsType !== fsType) throw configError(`config ${configName} needs ${given.fsType}, but --dir ${dir} is on ${fsType}`);
  }

  const testDir = path.join(real, randomName('daxpin-'));
  try {
    fs.mkdirSync(testDir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'EROFS' ? 'is on a read-only filesystem' : code === 'EACCES' || code === 'EPERM' ? 'is not writable' : `cannot hold a test directory (${code})`;
    throw configError(`--dir ${dir} ${why}`);
  }
  const removeTestDir = (): void => fs.rmSync(testDir, { recursive: true, force: true });
  const unregister = register(`remove ${testDir}`, removeTestDir);
  try {
    const notes: string[] = [];
    if (given?.dax === 'inode') {
      try {
        await setDaxFlag(testDir);
      } catch (err) {
        notes.push(`setting FS_XFLAG_DAX on the test dir failed with ${errText(err)}`);
      }
    }
    const daxVerified = await probeDax(testDir);
    const config = given ?? configFor(fsType, entry, daxVerified);
    if (config.dax !== 'off' && !daxVerified) notes.push('statx on a probe file does not report STATX_ATTR_DAX');
    const teardown = once(async (): Promise<TeardownResult> => {
      unregister();
      try {
        removeTestDir();
        return { fsck: null, cleanupErrors: [] };
      } catch (err) {
        return { fsck: null, cleanupErrors: [`remove ${testDir}: ${errText(err)}`] };
      }
    });
    return {
      config,
      mountPoint: entry.mountPoint,
      testDir,
      device: entry.source.startsWith('/dev/') ? entry.source : null,
      fsType,
      mountOptions: entry.superOptions,
      superOptions: entry.superOptions,
      daxVerified,
      daxNote: config.dax !== 'off' && !daxVerified ? notes.join('; ') : null,
      pmdExtentHint: fsType === 'xfs',
      ballastBytes: 0,
      mkfs: null,
      geometry: null,
      mount: null,
      teardown,
    };
  } catch (err) {
    unregister();
    removeTestDir();
    throw err;
  }
}
