// The pure parts of the qemu substrate, without apt, qemu or a kernel: reading apt
// sources, picking kernels from archive records, module load order, the newc writer,
// the guest memory layout, the guest command script and the PVH vmlinux.

import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { debianMirrors, kernelSourcesList, parseDeb822Sources, parseMadison, parseOneLineSources, parsePackageRecords } from '../../lib/vm/apt';
import { GUEST_MODULES, guestModuleNames, loadOrder, loadStages, moduleName, newcArchive } from '../../lib/vm/initramfs';
import { completeKernels, matchesVersionPrefix, pickArchiveKernel } from '../../lib/vm/kernels';
import { memoryLayout, qemuArgs } from '../../lib/vm/qemu';
import { commandScript } from '../../lib/vm/guest';
import { compareVersions } from '../../lib/versions';
import { bzImagePayload, hasPvhNote, payloadFormat } from '../../lib/vm/vmlinux';
import * as zlib from 'node:zlib';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { storeVersion, versionsOf } from '../../lib/vm/cache';

// Host names are placeholders of the reserved .example domain, never a real mirror.
const DEB822 = `Types: deb
# a comment
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: https://vendor.example/apt
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/vendor.gpg

Types: deb
URIs: http://off.example/debian
Suites: bookworm
Components: main
Enabled: no
`;

t.test('the Debian mirror is found among the machine sources', async (t) => {
  t.same(debianMirrors(parseDeb822Sources(DEB822)), ['http://mirror.example/debian']);
  const oneLine = 'deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://one.example/debian/ bookworm main contrib\n' +
    '# deb http://commented.example/debian bookworm main\n' +
    'deb http://one.example/debian-security bookworm-security main\n';
  t.same(debianMirrors(parseOneLineSources(oneLine)), ['http://one.example/debian']);
  t.same(kernelSourcesList(['http://m.example/debian'], ['sid']).trim(),
    'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://m.example/debian sid main');
});

const RECORDS = `Package: linux-image-6.1.0-50-amd64-unsigned
Version: 6.1.176-1
Depends: kmod, linux-base (>= 4.3~), initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool
Size: 70302080
Filename: pool/main/l/linux/linux-image-6.1.0-50-amd64-unsigned_6.1.176-1_amd64.deb

Package: linux-image-6.12.107+deb13-amd64
Version: 6.12.107-1
Depends: kmod
Size: 100
Filename: pool/a.deb

Package: linux-binary-unsigned-7.3.4+deb13-amd64
Version: 7.3.4-1~bpo13+1
Depends: linux-base-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1)
Size: 14136960
Filename: pool/b.deb

Package: linux-modules-7.3.4+deb13-amd64
Version: 7.3.4-1~bpo13+1
Size: 106862204
Filename: pool/c.deb

Package: linux-image-6.19.14+deb13-amd64
Version: 6.19.14-1~bpo13+1
Depends: linux-binary-6.19.14+deb13-amd64 (= 6.19.14-1~bpo13+1), linux-modules-6.19.14+deb13-amd64 (= 6.19.14-1~bpo13+1)
Size: 2052
Filename: pool/d.deb

Package: linux-binary-6.19.14+deb13-amd64
Version: 6.19.14-1~bpo13+1
Size: 13504740
Filename: pool/e.deb
`;

const MADISON = ` linux-image-6.1.0-50-amd64-unsigned | 6.1.176-1 | http://m.example/debian bookworm/main amd64 Packages
linux-image-6.12.107+deb13-amd64 | 6.12.107-1 | http://m.example/debian trixie/main amd64 Packages
linux-binary-unsigned-7.3.4+deb13-amd64 | 7.3.4-1~bpo13+1 | http://m.example/debian trixie-backports/main amd64 Packages
linux-modules-7.3.4+deb13-amd64 | 7.3.4-1~bpo13+1 | http://m.example/debian trixie-backports/main amd64 Packages
`;

t.test('archive records become complete kernels, and version specs pick among them', async (t) => {
  const suites = parseMadison(MADISON);
  const packages = parsePackageRecords(RECORDS).map((r) => ({ ...r, suites: suites.get(`${r.name} ${r.version}`) ?? [] }));
  t.same(packages[0].depends, ['kmod', 'linux-base', 'initramfs-tools']);
  const kernels = completeKernels(packages);
  // 6.19.14 has its image and binary but no linux-modules: not bootable, so not offered
  t.same(kernels.map((k) => k.release), ['6.1.0-50-amd64', '6.12.107+deb13-amd64', '7.3.4+deb13-amd64']);
  t.same(kernels[2].packages.map((p) => p.name), ['linux-binary-unsigned-7.3.4+deb13-amd64', 'linux-modules-7.3.4+deb13-amd64']);
  t.same(kernels[2].suites, ['trixie-backports']);
  t.equal(pickArchiveKernel('6.1', kernels)?.release, '6.1.0-50-amd64', '6.1 does not match 6.12');
  t.equal(pickArchiveKernel('6.12', kernels)?.release, '6.12.107+deb13-amd64');
  t.equal(pickArchiveKernel('latest', kernels)?.release, '7.3.4+deb13-amd64');
  t.equal(pickArchiveKernel('7.3.4+deb13-amd64', kernels)?.release, '7.3.4+deb13-amd64');
  t.equal(pickArchiveKernel('5.99', kernels), null);
  t.equal(pickArchiveKernel('6.19', kernels), null);
});

t.test('versions compare by number', async (t) => {
  t.ok(compareVersions('6.12.9', '6.12.10') < 0);
  t.ok(compareVersions('7.0.1', '6.19.14') > 0);
  t.ok(matchesVersionPrefix('6.1', '6.1.176'));
  t.notOk(matchesVersionPrefix('6.1', '6.12.3'));
  t.ok(matchesVersionPrefix('7', '7.3.4'));
});

t.test('modules load after what they depend on', async (t) => {
  t.equal(moduleName('kernel/drivers/md/dm-delay.ko.xz'), 'dm_delay');
  const depends = new Map([
    ['xfs', ['libcrc32c']],
    ['libcrc32c', []],
    ['crc32c_generic', []],
    ['9p', ['9pnet', 'netfs']],
    ['9pnet', []],
    ['netfs', []],
  ]);
  t.same(loadOrder(['9p', 'crc32c_generic', 'xfs', 'builtin_one'], depends), ['9pnet', 'netfs', '9p', 'crc32c_generic', 'libcrc32c', 'xfs']);
});

t.test('module chains load in parallel after the root stage; shared dependencies move to the root stage', async (t) => {
  const depends = new Map([
    ['9p', ['9pnet', 'netfs']],
    ['9pnet', []],
    ['netfs', []],
    ['ext4', ['jbd2', 'crc16']],
    ['jbd2', []],
    ['crc16', []],
    ['xfs', ['libcrc32c', 'crc16']],
    ['libcrc32c', []],
    ['nbd', []],
  ]);
  const stages = loadStages({ root: ['9p', 'overlay_builtin'], chains: [['ext4', 'netfs'], ['xfs']], onDemand: ['nbd'] }, depends);
  t.same(stages, { root: ['9pnet', 'netfs', '9p', 'crc16'], chains: [['jbd2', 'ext4'], ['libcrc32c', 'xfs']] });
  t.same(guestModuleNames(GUEST_MODULES).slice(0, 2), ['virtio_pci', '9pnet_virtio']);
  t.ok(guestModuleNames(GUEST_MODULES).includes('dm_delay'), 'on-demand modules are in the image');
});

t.test('newc archives are read back by cpio', async (t) => {
  const archive = newcArchive([
    { path: 'bin', mode: 0o040755 },
    { path: 'bin/hello', mode: 0o100755, data: Buffer.from('#!/bin/sh\necho hi\n') },
    { path: 'sbin', mode: 0o120777, data: Buffer.from('bin') },
    { path: 'dev/console', mode: 0o020600, rdev: { major: 5, minor: 1 } },
  ]);
  t.equal(archive.length % 4, 0, 'padded to 4 bytes');
  t.equal(archive.subarray(0, 6).toString(), '070701');
  // busybox-static is a host package of the substrate anyway; its cpio is an independent reader
  const cpio = spawnSync('busybox', ['cpio', '-t'], { input: archive, encoding: 'utf8' });
  t.same(cpio.stdout?.trim().split('\n'), ['bin', 'bin/hello', 'sbin', 'dev/console'], 'cpio lists every entry', {
    skip: cpio.error ? 'no busybox to read the archive with' : false,
  });
});

t.test('pmem sits above 4 GiB inside RAM qemu maps there', async (t) => {
  t.same(memoryLayout(2048, 1024), { totalMb: 3072, lowMb: 2048, memmap: 'memmap=1024M!4G' });
  t.same(memoryLayout(8192, 1024), { totalMb: 9216, lowMb: 3072, memmap: 'memmap=1024M!4G' });
  const args = qemuArgs({
    kernel: { release: 'r', vmlinuz: '/k/vmlinuz', modulesDir: null, origin: 'test' },
    initramfs: '/k/initrd',
    memMb: 2048,
    pmemMb: 512,
    cpus: 2,
    accel: 'tcg',
    resultsDir: '/results,odd',
    append: [],
  });
  t.ok(args.includes('-no-reboot'));
  t.match(args[args.indexOf('-append') + 1], /memmap=512M!4G panic=-1/);
  t.ok(args.includes('local,path=/results,,odd,mount_tag=results,security_model=none,multidevs=remap'), 'commas in paths are escaped');
  t.equal(args[args.indexOf('-kernel') + 1], '/k/vmlinuz', 'the bzImage by default');
  t.notOk(args.includes('-bios'));
  const pvh = qemuArgs({ kernel: { release: 'r', vmlinuz: '/k/vmlinuz', modulesDir: null, origin: 'test' }, image: '/c/vmlinux.elf', bios: '/q/qboot.rom', initramfs: '/k/initrd', memMb: 2048, pmemMb: 512, cpus: 2, accel: 'tcg', resultsDir: null, append: [] });
  t.equal(pvh[pvh.indexOf('-kernel') + 1], '/c/vmlinux.elf');
  t.equal(pvh[pvh.indexOf('-bios') + 1], '/q/qboot.rom');
});

t.test('the guest command script quotes every word', async (t) => {
  const script = commandScript([process.execPath, '-e', 'console.log("it\'s", process.env.A, process.cwd())'], { A: "x 'y'" }, '/');
  t.match(script, /^#!\/bin\/sh\ncd '\/' \|\| exit 125\nexec env -i /);
  t.equal(execFileSync('sh', ['-c', script], { encoding: 'utf8' }).trim(), "it's x 'y' /");
});

t.test('a cache entry replaces its older versions of the same release only', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'daxpin-cache-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const versions = versionsOf('6.1.0-50+deb12-amd64', '\\.(elf|none)');
  const keep = ['6.1.0-50+deb12-amd64-0123456789abcdef.cpio.gz', '6.1.0-50+deb12-amd64x-0123456789abcdef.elf', '6.1.0-5-amd64-0123456789abcdef.elf', 'other'];
  for (const name of [...keep, '6.1.0-50+deb12-amd64-fedcba9876543210.elf', '6.1.0-50+deb12-amd64-aaaaaaaaaaaaaaaa.none']) fs.writeFileSync(path.join(dir, name), 'old');
  const file = path.join(dir, '6.1.0-50+deb12-amd64-0123456789abcdef.elf');
  await storeVersion(file, Buffer.from('new'), versions);
  t.equal(fs.readFileSync(file, 'utf8'), 'new');
  t.same(fs.readdirSync(dir).sort(), [...keep, path.basename(file)].sort(), 'older versions gone; other releases, suffixes and files kept; no temp file left');
});

t.test('a bzImage payload is found, unpacked by its magic, and the PVH note recognised', async (t) => {
  const payload = zlib.gzipSync(Buffer.from('kernel'));
  const setupSects = 2;
  const image = Buffer.alloc((setupSects + 1) * 512 + 100 + payload.length + 4);
  image[0x1f1] = setupSects;
  image.write('HdrS', 0x202, 'latin1');
  image.writeUInt16LE(0x20f, 0x206);
  image.writeUInt32LE(100, 0x248);
  image.writeUInt32LE(payload.length + 4, 0x24c);
  payload.copy(image, (setupSects + 1) * 512 + 100);
  const found = bzImagePayload(image);
  t.ok(found && found.equals(payload), 'payload without the appended size');
  t.equal(payloadFormat(payload), 'gzip');
  t.equal(payloadFormat(Buffer.from('fd377a585a0000', 'hex')), 'xz');
  t.equal(payloadFormat(Buffer.from('28b52ffd0488', 'hex')), 'zstd');
  t.equal(bzImagePayload(Buffer.alloc(1024)), null, 'not a bzImage');

  // An ELF64 with one PT_NOTE holding a "Xen" note of type 18 (XEN_ELFNOTE_PHYS32_ENTRY).
  const elf = (noteType: number) => {
    const b = Buffer.alloc(64 + 56 + 24);
    b.writeUInt32BE(0x7f454c46, 0);
    b[4] = 2;
    b.writeBigUInt64LE(64n, 0x20);
    b.writeUInt16LE(56, 0x36);
    b.writeUInt16LE(1, 0x38);
    b.writeUInt32LE(4, 64);
    b.writeBigUInt64LE(120n, 64 + 8);
    b.writeBigUInt64LE(24n, 64 + 32);
    b.writeUInt32LE(4, 120);
    b.writeUInt32LE(8, 124);
    b.writeUInt32LE(noteType, 128);
    b.write('Xen\0', 132, 'latin1');
    return b;
  };
  t.ok(hasPvhNote(elf(18)));
  t.notOk(hasPvhNote(elf(17)));
  t.notOk(hasPvhNote(Buffer.from('not an elf at all, not at all, not at all, not at all, not at all')));
});
