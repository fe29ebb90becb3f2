// Scratch configs on this kernel: loop-backed ext4 and XFS, tmpfs, each prepared,
// used, and torn down without leaving a mount or a loop device, with fsck clean.
// Also --dir on an existing mount and its one-line refusals. Needs root.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t, { Test } from 'tap';
import { CONFIGS, Config } from '../../lib/cases/matrix';
import { registered } from '../../lib/host/lifecycle';
import { DaxpinError } from '../../lib/errors';
import { BALLAST_RESERVE_MB, PreparedConfig, TMPFS_SIZE_MB, prepareExistingDir, prepareOnDevice, prepareScratch } from '../../lib/configs/setup';
import { native } from '../../lib/native';

const config = (name: string): Config => CONFIGS.find((c) => c.name === name) as Config;
const mounts = (): string => fs.readFileSync('/proc/mounts', 'utf8');
const loops = (): string => execFileSync('losetup', ['-a'], { encoding: 'utf8' });
const MIB = 1024 * 1024;

function workDir(t: { teardown(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'daxpin-configs-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function assertUsable(t: Test, p: PreparedConfig): Promise<void> {
  t.ok(mounts().includes(` ${p.mountPoint} ${p.fsType} `), `${p.fsType} is mounted at the mount point`);
  t.ok(p.testDir.startsWith(`${p.mountPoint}/daxpin-`), 'the test dir is daxpin-<random> in the mount');
  const file = path.join(p.testDir, 'file');
  fs.writeFileSync(file, Buffer.alloc(64 * 1024, 0xa5));
  t.equal(native.statx(file).size, 64 * 1024, 'a file can be created and written');
}

for (const name of ['ext4', 'xfs']) {
  t.test(`scratch ${name}: mkfs on a loop file, ballast, teardown with a clean fsck`, async (t) => {
    const dir = workDir(t);
    const p = await prepareScratch(config(name), { workDir: dir });
    t.teardown(() => p.teardown().then(() => undefined));
    t.match(p.device, /^\/dev\/loop\d+$/);
    t.ok(loops().includes(`${p.device}:`), 'the loop device is attached');
    t.equal(p.daxVerified, false);
    t.equal(p.daxNote, null);
    t.equal(p.pmdExtentHint, name === 'xfs');
    if (name === 'xfs') t.match(p.superOptions, /sunit=4096,swidth=4096/, 'XFS data is aligned to 2 MiB (su=2m)');
    else t.match(p.superOptions, /stripe=512/, 'ext4 knows the 2 MiB stripe');
    await assertUsable(t, p);
    const st = fs.statfsSync(p.mountPoint);
    const freeMb = (st.bavail * st.bsize) / MIB;
    t.ok(p.ballastBytes > 0, 'a ballast file fills the filesystem');
    t.ok(freeMb >= BALLAST_RESERVE_MB - 2 && freeMb <= BALLAST_RESERVE_MB + 40, `about ${BALLAST_RESERVE_MB} MiB left free (${freeMb.toFixed(1)} MiB)`);
    t.ok(registered().some((n) => n.startsWith('unmount')), 'the mount is registered for Ctrl-C');

    const device = p.device as string;
    const { fsck, cleanupErrors } = await p.teardown();
    t.same(cleanupErrors, []);
    t.match(fsck, { tool: name === 'xfs' ? `xfs_repair -n ${device}` : `e2fsck -fn ${device}`, ok: true, exitCode: 0 });
    t.notOk(mounts().includes(p.mountPoint), 'nothing is left mounted');
    t.notOk(loops().includes(dir), 'no loop device is left over the scratch file');
    t.same(fs.readdirSync(dir), [], 'the work dir is empty');
    t.same(registered(), [], 'nothing is left registered');
    t.same(await p.teardown(), { fsck, cleanupErrors }, 'teardown is idempotent');
  });
}

t.test('scratch tmpfs: small, no device, no fsck', async (t) => {
  const dir = workDir(t);
  const p = await prepareScratch(config('tmpfs'), { workDir: dir });
  t.teardown(() => p.teardown().then(() => undefined));
  t.equal(p.device, null);
  t.equal(p.mountOptions, `size=${TMPFS_SIZE_MB}m`);
  await assertUsable(t, p);
  t.same(await p.teardown(), { fsck: null, cleanupErrors: [] });
  t.notOk(mounts().includes(p.mountPoint));
  t.same(fs.readdirSync(dir), []);
});

t.test('a DAX config on a loop device: not verified, and the kernel said why', async (t) => {
  const dir = workDir(t);
  for (const name of ['ext4-dax', 'xfs-dax', 'xfs-dax-inode']) {
    const p = await prepareScratch(config(name), { workDir: dir });
    t.equal(p.daxVerified, false, `${name} is not DAX on a loop device`);
    t.type(p.daxNote, 'string', `${name}: ${p.daxNote}`);
    if (name !== 'xfs-dax-inode') t.match(p.daxNote, /DAX unsupported by block device/, 'in the kernel\'s words');
    await assertUsable(t, p);
    const { fsck } = await p.teardown();
    t.equal(fsck?.ok, true);
  }
  t.notOk(loops().includes(dir));
  t.notOk(mounts().includes(dir));
});

t.test('--dir on an existing mount: config derived, only daxpin\'s subdir touched', async (t) => {
  const dir = workDir(t);
  const mnt = path.join(dir, 'mnt');
  fs.mkdirSync(mnt);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mnt]);
  t.teardown(() => execFileSync('umount', [mnt]));
  fs.writeFileSync(path.join(mnt, 'users-file'), 'keep me');
  const p = await prepareExistingDir(mnt);
  t.equal(p.config.name, 'tmpfs');
  t.equal(p.fsType, 'tmpfs');
  t.equal(p.mountPoint, mnt);
  t.equal(p.ballastBytes, 0, 'never fills a user\'s filesystem');
  await assertUsable(t, p);
  t.same(await p.teardown(), { fsck: null, cleanupErrors: [] });
  t.same(fs.readdirSync(mnt), ['users-file'], 'only daxpin\'s subdir was removed');
});

t.test('--dir refusals: one line, exit code 2', async (t) => {
  const dir = workDir(t);
  const file = path.join(dir, 'file');
  fs.writeFileSync(file, '');
  const ro = path.join(dir, 'ro');
  fs.mkdirSync(ro);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,ro', 'tmpfs', ro]);
  t.teardown(() => execFileSync('umount', [ro]));
  const rootDir = fs.statSync(os.tmpdir()).dev === fs.statSync('/').dev ? os.tmpdir() : '/';
  const cases: [string, string | undefined, RegExp][] = [
    [path.join(dir, 'missing'), undefined, /does not exist/],
    [file, undefined, /is not a directory/],
    [rootDir, undefined, /is on the root filesystem/],
    [ro, undefined, /is on a read-only filesystem/],
    [ro, 'no-such-config', /unknown config no-such-config; known: /],
    [ro, 'xfs-dax', /config xfs-dax needs xfs, but --dir .* is on tmpfs/],
    ['/proc/sys', undefined, /is on proc; daxpin runs on ext4, xfs and tmpfs/],
  ];
  for (const [d, name, why] of cases) {
    const err = await prepareExistingDir(d, name).catch((e: unknown) => e);
    t.ok(err instanceof DaxpinError, `${d} ${name ?? ''} is refused`);
    t.equal((err as DaxpinError).code, 'ECONFIG');
    t.equal((err as DaxpinError).exitCode, 2);
    t.notMatch((err as Error).message, /\n/);
    t.notMatch((err as Error).message, /^daxpin: /, 'the CLI adds the prefix');
    t.match((err as Error).message, why);
  }
  t.same(registered(), []);
});

/** A loop device over a sparse file in `dir`, detached at teardown: a device "the user named". */
function userLoop(t: { teardown(fn: () => void): void }, dir: string, sizeMb: number): string {
  const image = path.join(dir, `user-${sizeMb}.img`);
  fs.writeFileSync(image, '');
  fs.truncateSync(image, sizeMb * MIB);
  const loop = execFileSync('losetup', ['--find', '--show', image], { encoding: 'utf8' }).trim();
  t.teardown(() => execFileSync('losetup', ['-d', loop]));
  return loop;
}

t.test('--device: a named loop device is formatted, mounted, checked, and left attached', async (t) => {
  const dir = workDir(t);
  const loop = userLoop(t, dir, 400);
  for (const name of ['xfs', 'ext4']) {
    const p = await prepareOnDevice(config(name), loop, { workDir: path.join(dir, 'work') });
    t.equal(p.device, loop);
    await assertUsable(t, p);
    const { fsck } = await p.teardown();
    t.equal(fsck?.ok, true, `${name}: ${fsck?.tool} is clean`);
    t.notOk(mounts().includes(p.mountPoint));
  }
  t.ok(loops().includes(`${loop}:`), 'the user\'s device stays attached');
  t.same(fs.readdirSync(path.join(dir, 'work')), []);
});

t.test('--device refusals come before anything is touched', async (t) => {
  const dir = workDir(t);
  const err = await prepareOnDevice(config('ext4'), '/dev/null', { workDir: dir }).catch((e: unknown) => e);
  t.ok(err instanceof DaxpinError);
  t.equal((err as DaxpinError).code, 'EUNSAFE');
  const small = userLoop(t, dir, 64);
  const tooSmall = await prepareOnDevice(config('xfs'), small, { workDir: path.join(dir, 'work') }).catch((e: unknown) => e);
  t.equal((tooSmall as DaxpinError).code, 'ECONFIG');
  t.match((tooSmall as Error).message, /^\/dev\/loop\d+ has 64 MiB; mkfs.xfs needs at least 300 MB$/);
  t.same(registered(), []);
});

// On a DAX machine (or a qemu guest with pmem): DAXPIN_TEST_DEVICE=/dev/pmemN.
const daxDevice = process.env.DAXPIN_TEST_DEVICE;
t.test('DAX configs on DAXPIN_TEST_DEVICE are verified by statx', { skip: daxDevice ? false : 'DAXPIN_TEST_DEVICE is not set' }, async (t) => {
  const dir = workDir(t);
  for (const c of CONFIGS.filter((c) => c.fsType !== 'tmpfs')) {
    const p = await prepareOnDevice(c, daxDevice as string, { workDir: dir });
    t.equal(p.daxVerified, c.dax !== 'off', `${c.name}: daxVerified ${p.daxVerified}${p.daxNote ? ` (${p.daxNote})` : ''}`);
    await assertUsable(t, p);
    const { fsck } = await p.teardown();
    t.equal(fsck?.ok, true, `${c.name}: fsck clean`);
  }
});
