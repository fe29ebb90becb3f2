// --device follows a loop device to the end of its backing chain (issue 13): a loop over
// a mounted loop, over the image file of a mounted loop, over a partition of a disk with
// a mounted partition, over a device-mapper target, over a swap file, over the root
// disk — each built here for real with losetup, and each refused before anything is
// written. Only devices this file attaches are touched; each is detached at teardown.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t, { Test } from 'tap';
import { checkScratchDevice } from '../../lib/configs/safety';
import { DaxpinError } from '../../lib/errors';
import { readMountinfo } from '../../lib/host/mountinfo';
import { runCli } from '../helpers/cli';

const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

function scratchDir(t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'daxpin-chain-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function image(dir: string, name: string, sizeMb = 64): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, '');
  fs.truncateSync(file, sizeMb * 1024 * 1024);
  return file;
}

/** losetup over `backing`; detached at teardown (teardowns run in reverse, so upper loops go first). */
function attach(t: Test, backing: string, ...flags: string[]): string {
  const loop = sh('losetup', [...flags, '--find', '--show', backing]);
  t.teardown(() => sh('losetup', ['-d', loop]));
  return loop;
}

function mountExt4(t: Test, dev: string, dir: string, name: string): string {
  sh('mkfs.ext4', ['-F', '-q', dev]);
  const mnt = path.join(dir, name);
  fs.mkdirSync(mnt);
  sh('mount', [dev, mnt]);
  t.teardown(() => sh('umount', [mnt]));
  return mnt;
}

async function refused(t: Test, device: string, why: RegExp): Promise<void> {
  const err = await checkScratchDevice(device).then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(err instanceof DaxpinError, `${device} is refused`);
  if (!(err instanceof DaxpinError)) return;
  t.equal(err.code, 'EUNSAFE');
  t.notMatch(err.message, /\n/, 'one line');
  t.match(err.message, why);
  t.comment(err.message);
}

const base = (p: string) => path.basename(p);

t.test('a loop over a mounted loop device is refused', async (t) => {
  const dir = scratchDir(t);
  const lower = attach(t, image(dir, 'lower.img'));
  const mnt = mountExt4(t, lower, dir, 'mnt');
  const upper = attach(t, lower);
  await refused(t, upper, new RegExp(`${base(upper)} → ${base(lower)} is mounted at ${mnt}`));
});

t.test('three loops deep over a mounted loop: still refused', async (t) => {
  const dir = scratchDir(t);
  const bottom = attach(t, image(dir, 'bottom.img'));
  const mnt = mountExt4(t, bottom, dir, 'mnt');
  const middle = attach(t, bottom);
  const top = attach(t, middle);
  await refused(t, top, new RegExp(`${base(top)} → ${base(middle)} → ${base(bottom)} is mounted at ${mnt}`));
});

t.test('a second loop over the image file of a mounted loop is refused', async (t) => {
  const dir = scratchDir(t);
  const img = image(dir, 'shared.img');
  const mounted = attach(t, img);
  mountExt4(t, mounted, dir, 'mnt');
  const second = attach(t, img);
  await refused(t, second, new RegExp(`${base(second)} → ${img} is also the backing file of ${base(mounted)}`));
});

/** A block node in `dir` for the kernel block device `name` (e.g. loop3p1). */
function partitionNode(dir: string, name: string): string {
  const [major, minor] = fs.readFileSync(`/sys/class/block/${name}/dev`, 'utf8').trim().split(':');
  const node = path.join(dir, name);
  sh('mknod', [node, 'b', major, minor]);
  return node;
}

t.test('a loop over a partition of a disk whose other partition is mounted is refused', async (t) => {
  const dir = scratchDir(t);
  const img = image(dir, 'parted.img', 96);
  execFileSync('sfdisk', ['-q', img], { input: 'label: gpt\n,40M\n,40M\n' });
  const disk = attach(t, img, '--partscan');
  // Partition scanning depends on the kernel's partition-table support; BLKPG does not.
  if (!fs.existsSync(`/sys/class/block/${base(disk)}p2`)) sh('partx', ['-a', disk]);
  // Without udev there may be no /dev nodes for the partitions: make our own.
  const [p1, p2] = ['p1', 'p2'].map((p) => partitionNode(dir, `${base(disk)}${p}`));
  const mnt = mountExt4(t, p1, dir, 'mnt');
  const overP2 = attach(t, p2);
  await refused(t, overP2, new RegExp(`${base(overP2)} → ${base(disk)}p2 \\(disk ${base(disk)}: ${base(disk)}p1\\) is mounted at ${mnt}`));
  const overDisk = attach(t, disk);
  await refused(t, overDisk, new RegExp(`${base(overDisk)} → ${base(disk)}.* is mounted at ${mnt}`));
});

const noDm = fs.readFileSync('/proc/misc', 'utf8').includes('device-mapper') ? false : 'no device-mapper in this kernel';
t.test('a loop over a device-mapper target over a mounted loop is refused, and so is one under a dm target', { skip: noDm }, async (t) => {
  const dir = scratchDir(t);
  const lower = attach(t, image(dir, 'dm.img'));
  const sectors = sh('blockdev', ['--getsz', lower]);
  const name = `daxpin-chain-${process.pid}`;
  sh('dmsetup', ['create', name, '--table', `0 ${sectors} linear ${lower} 0`]);
  t.teardown(() => sh('dmsetup', ['remove', name]));
  const dmDev = sh('dmsetup', ['info', '-c', '--noheadings', '-o', 'major,minor', name]);
  const dmName = fs.realpathSync(`/sys/dev/block/${dmDev}`).split('/').pop() as string;
  // The dm target holds the lower loop: formatting that loop would write under it.
  await refused(t, lower, new RegExp(`${base(lower)} is held by ${dmName}`));
  // A loop over the dm target (through a node of our own: there may be no udev here).
  const node = path.join(dir, 'dm-node');
  const [major, minor] = dmDev.split(':');
  sh('mknod', [node, 'b', major, minor]);
  const mnt = mountExt4(t, node, dir, 'mnt');
  const over = attach(t, node);
  await refused(t, over, new RegExp(`${base(over)} → ${dmName} is mounted at ${mnt}`));
});

t.test('a loop over a swap file is refused', async (t) => {
  const dir = scratchDir(t);
  const img = path.join(dir, 'swapfile');
  sh('dd', ['if=/dev/zero', `of=${img}`, 'bs=1M', 'count=32', 'status=none']);
  fs.chmodSync(img, 0o600);
  sh('mkswap', ['-q', img]);
  try {
    sh('swapon', [img]);
  } catch (e) {
    t.plan(0, `swapon on ${os.tmpdir()} refused here: ${(e as Error).message.split('\n')[0]}`);
    return;
  }
  t.teardown(() => sh('swapoff', [img]));
  const over = attach(t, img);
  await refused(t, over, new RegExp(`${base(over)} → ${img} is in use as swap`));
});

const rootSource = readMountinfo().find((e) => e.mountPoint === '/')?.source ?? '';
const rootSkip = rootSource.startsWith('/dev/') ? false : 'the root filesystem is not on a block device here';
t.test('a read-only loop over the root disk is refused', { skip: rootSkip }, async (t) => {
  let over: string;
  try {
    over = attach(t, rootSource, '--read-only');
  } catch (e) {
    // Kernels without CONFIG_BLK_DEV_WRITE_MOUNTED, or a sandbox, refuse the loop itself.
    t.plan(0, `the kernel refuses a loop over ${rootSource} here: ${(e as Error).message.split('\n').slice(-2).join(' ')}`);
    return;
  }
  // Refused for the root disk, before its read-only flag is even looked at.
  await refused(t, over, new RegExp(`${base(over)} → ${base(fs.realpathSync(rootSource))}: it writes through to the root filesystem's device`));
});

t.test('a loop over an unused loop device, and a loop over a file, pass', async (t) => {
  const dir = scratchDir(t);
  const lower = attach(t, image(dir, 'unused.img'));
  const upper = attach(t, lower);
  t.equal(await checkScratchDevice(upper), upper, 'the whole chain is unused');
  t.equal(await checkScratchDevice(lower), lower);
});

t.test('a loop whose backing file was deleted is refused: nothing can say who else uses it', async (t) => {
  const dir = scratchDir(t);
  const img = image(dir, 'gone.img');
  const loop = attach(t, img);
  fs.unlinkSync(img);
  await refused(t, loop, /backed by .*gone\.img \(deleted\), which daxpin cannot follow/);
});

t.test('daxpin run --device on a loop over a mounted loop: exit 2, one line, the filesystem above untouched', async (t) => {
  const dir = scratchDir(t);
  const lower = attach(t, image(dir, 'victim.img'));
  const mnt = mountExt4(t, lower, dir, 'mnt');
  fs.writeFileSync(path.join(mnt, 'precious'), 'still here');
  const upper = attach(t, lower);
  const r = await runCli(['run', '--device', upper, '--config', 'ext4', '--cases', 'none.punch-hole.pte-shared', '--out', path.join(dir, 'run.jsonl')], { TMPDIR: dir });
  t.equal(r.code, 2);
  t.match(r.stderr, new RegExp(`^daxpin: refusing to format ${upper}: ${base(upper)} → ${base(lower)} is mounted at ${mnt}\\n$`));
  t.notOk(fs.existsSync(path.join(dir, 'run.jsonl')), 'no run file is left');
  sh('umount', [mnt]);
  sh('mount', [lower, mnt]);
  t.equal(fs.readFileSync(path.join(mnt, 'precious'), 'utf8'), 'still here', 'the mounted ext4 is intact');
});
