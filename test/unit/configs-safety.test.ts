// daxpin formats only an unused pmem or loop device the user named: every other path
// is refused with one clear line and exit code 2. Needs root (loop devices).
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t, { Test } from 'tap';
import { readMountinfo } from '../../lib/host/mountinfo';
import { checkScratchDevice } from '../../lib/configs/safety';
import { DaxpinError } from '../../lib/errors';

const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8' }).trim();

async function refusal(t: Test, device: string, why: RegExp): Promise<void> {
  const err = await checkScratchDevice(device).then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(err instanceof DaxpinError, `${device} is refused`);
  if (!(err instanceof DaxpinError)) return;
  t.equal(err.exitCode, 2);
  t.equal(err.code, 'EUNSAFE');
  t.notMatch(err.message, /\n/, 'one line');
  t.match(err.message, /^refusing/);
  t.match(err.message, why);
}

/** A loop device over a fresh sparse file, detached (and the file removed) at teardown. */
function attachLoop(t: Test, sizeMb = 64): { loop: string; dir: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'daxpin-safety-'));
  const image = path.join(dir, 'disk.img');
  fs.writeFileSync(image, '');
  fs.truncateSync(image, sizeMb * 1024 * 1024);
  const loop = sh('losetup', ['--find', '--show', image]);
  t.teardown(() => {
    sh('losetup', ['-d', loop]);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { loop, dir };
}

const rootSource = readMountinfo().find((e) => e.mountPoint === '/')?.source ?? '';
const rootSkip = rootSource.startsWith('/dev/') ? false : 'the root filesystem is not on a block device here';
t.test('the root disk is refused, with no override', { skip: rootSkip }, async (t) => {
  await refusal(t, rootSource, /holds the root filesystem.*never formats it/);
});

t.test('a mounted loop device is refused', async (t) => {
  const { loop, dir } = attachLoop(t);
  sh('mkfs.ext4', ['-F', '-q', loop]);
  const mnt = path.join(dir, 'mnt');
  fs.mkdirSync(mnt);
  sh('mount', [loop, mnt]);
  t.teardown(() => sh('umount', [mnt]));
  await refusal(t, loop, new RegExp(`${path.basename(loop)} is mounted at ${mnt}`));
});

t.test('a regular file is refused', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'daxpin-safety-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'disk.img');
  fs.writeFileSync(file, Buffer.alloc(4096));
  await refusal(t, file, /it is a regular file, not a pmem or loop block device/);
});

t.test('/dev/null and other character devices are refused', async (t) => {
  await refusal(t, '/dev/null', /it is a character device/);
  await refusal(t, '/dev/zero', /it is a character device/);
});

t.test('a nonexistent path is refused', async (t) => {
  await refusal(t, '/dev/daxpin-no-such-device', /no such file or device/);
});

t.test('a symlink is resolved first: a link to /dev/null is refused and names both', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'daxpin-safety-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const link = path.join(dir, 'pmem0');
  fs.symlinkSync('/dev/null', link);
  await refusal(t, link, new RegExp(`${link} \\(-> /dev/null\\): it is a character device`));
});

t.test('a directory and an empty name are refused', async (t) => {
  await refusal(t, os.tmpdir(), /it is a directory/);
  const err = await checkScratchDevice('').catch((e: unknown) => e);
  t.ok(err instanceof DaxpinError);
  t.match((err as Error).message, /no device named/);
});

const otherDisk = fs
  .readdirSync('/sys/class/block')
  .filter((name) => !/^(pmem|loop)/.test(name) && fs.existsSync(`/dev/${name}`))
  .map((name) => `/dev/${name}`)
  .find((dev) => fs.statSync(dev).isBlockDevice() && !readMountinfo().some((e) => e.source === dev));
t.test('a block device that is neither pmem nor loop is refused', { skip: otherDisk ? false : 'no such device here' }, async (t) => {
  await refusal(t, otherDisk as string, /is neither a pmem \(\/dev\/pmemN\) nor a loop \(\/dev\/loopN\) device/);
});

t.test('a loop device with no backing file is refused', async (t) => {
  const free = sh('losetup', ['--find']);
  await refusal(t, free, /is not attached to a backing file/);
});

t.test('an attached, unused loop device passes, also through a symlink', async (t) => {
  const { loop, dir } = attachLoop(t);
  t.equal(await checkScratchDevice(loop), loop);
  const link = path.join(dir, 'scratch');
  fs.symlinkSync(loop, link);
  t.equal(await checkScratchDevice(link), loop, 'the resolved device path is returned');
});

t.test('a loop device mounted only in another mount namespace is refused', async (t) => {
  const { loop, dir } = attachLoop(t);
  sh('mkfs.ext4', ['-F', '-q', loop]);
  const mnt = path.join(dir, 'mnt');
  fs.mkdirSync(mnt);
  const child = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', `mount ${loop} ${mnt} && echo mounted && exec sleep 60`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  t.teardown(async () => {
    child.kill('SIGKILL');
    await exited;
  });
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  t.notOk(readMountinfo().some((e) => e.mountPoint === mnt), 'not visible in our own namespace');
  await refusal(t, loop, new RegExp(`${path.basename(loop)} is mounted at ${mnt}`));
});

t.test('a loop device in use as swap is refused', async (t) => {
  const { loop } = attachLoop(t);
  sh('mkswap', [loop]);
  sh('swapon', [loop]);
  t.teardown(() => sh('swapoff', [loop]));
  await refusal(t, loop, new RegExp(`${loop} is in use as swap`));
});
