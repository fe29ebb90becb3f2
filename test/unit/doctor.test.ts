// daxpin doctor: the judgement is a pure function of probe facts (tested here on made-up
// machines), and on this machine the probe and the judgement together say what they see.

import t from 'tap';
import { MIN_CACHE_FREE_BYTES, doctorReport, gatherFacts, renderDoctor } from '../../lib/doctor';
import type { DoctorFacts } from '../../lib/doctor';
import { runCli } from '../helpers/cli';

/** This project's machines as of writing: root, qemu with TCG, no /dev/kvm, no pmem. */
function facts(patch: Partial<DoctorFacts> = {}): DoctorFacts {
  return {
    root: true,
    kernelRelease: '6.18.44',
    qemuVersion: '7.2.22',
    qemuAccels: ['kvm', 'tcg'],
    kvmDevice: false,
    kvmProbe: null,
    missingHostPackages: [],
    fuse: { filesystem: true, device: true },
    loopControl: true,
    ioUring: { works: true, errno: null, disabledSysctl: 0 },
    tracefs: { supported: true, mountPoint: null, fsDaxEvents: false },
    nbd: { loaded: false, module: false },
    cache: { dir: '/root/.cache/daxpin', freeBytes: 70 * 1024 ** 3 },
    kernelsCached: ['6.1.0-50-amd64'],
    pmemDevices: [],
    daxMounts: [],
    ...patch,
  };
}

const line = (r: ReturnType<typeof doctorReport>, what: string) => r.lines.filter((l) => l.what === what);

t.test('no pmem: the qemu runner works, a native DAX run names what it lacks', async (t) => {
  const r = doctorReport(facts());
  t.equal(r.qemuRunner, true);
  t.equal(r.nativeDax, false);
  t.match(r.summary[0], /^the qemu runner can run here: TCG guests boot Debian kernels with emulated pmem/);
  t.equal(r.summary[1], 'a native DAX run cannot run here: missing a pmem device (or a DAX mount statx confirms)');
  t.match(line(r, 'pmem device'), [{ status: 'missing', todo: /memmap=SIZE!OFFSET/ }]);
  t.match(line(r, 'KVM'), [{ status: 'note', found: /guests run under TCG/ }]);
  t.match(line(r, 'nbd (host)'), [{ status: 'missing' }], 'nbd is reported, but optional');
  const text = renderDoctor(r);
  t.match(text, /^root {13}ok {7}running as root\n/);
  t.match(text, /\npmem device {6}missing {2}no \/dev\/pmem\* {2}→ a native DAX run needs/);
});

t.test('a DAX mount statx confirms, or a pmem device: native DAX can run', async (t) => {
  const mount = { mountPoint: '/mnt/pmem', source: '/dev/pmem0', fsType: 'xfs', statxDax: true, file: '/mnt/pmem/f' };
  const r = doctorReport(facts({ daxMounts: [mount] }));
  t.equal(r.nativeDax, true);
  t.match(line(r, 'DAX mount'), [{ status: 'ok', found: '/mnt/pmem (xfs on /dev/pmem0): statx says DAX on /mnt/pmem/f' }]);
  t.equal(doctorReport(facts({ pmemDevices: ['/dev/pmem0'] })).nativeDax, true);
  const notDax = doctorReport(facts({ daxMounts: [{ ...mount, statxDax: false }] }));
  t.equal(notDax.nativeDax, false, 'dax in the mount options is not DAX');
  t.match(line(notDax, 'DAX mount'), [{ status: 'missing', found: /statx says no DAX/ }]);
  t.match(line(doctorReport(facts({ daxMounts: [{ ...mount, statxDax: null, file: null }] })), 'DAX mount'), [{ status: 'note', todo: 'daxpin run --dir /mnt/pmem verifies it on its own test file' }]);
});

t.test('what a native run needs from the host kernel', async (t) => {
  const pmem = { pmemDevices: ['/dev/pmem0'] };
  const noUring = doctorReport(facts({ ...pmem, ioUring: { works: false, errno: 'EPERM', disabledSysctl: 2 } }));
  t.equal(noUring.nativeDax, false);
  t.equal(noUring.summary[1], 'a native DAX run cannot run here: missing io_uring (host)');
  t.match(line(noUring, 'io_uring (host)'), [{ found: 'io_uring_setup failed (EPERM); kernel.io_uring_disabled=2', todo: /sysctl kernel.io_uring_disabled=0/ }]);
  t.equal(noUring.qemuRunner, true, 'guests have their own kernel');
  const noFuse = doctorReport(facts({ ...pmem, fuse: { filesystem: false, device: false } }));
  t.equal(noFuse.summary[1], 'a native DAX run cannot run here: missing FUSE (host)');
  t.equal(doctorReport(facts({ ...pmem, tracefs: { supported: false, mountPoint: null, fsDaxEvents: false } })).nativeDax, true, 'without tracefs only PMD observation is lost');
});

t.test('when the qemu runner cannot run', async (t) => {
  const cases: Array<[string, Partial<DoctorFacts>, RegExp]> = [
    ['not root', { root: false }, /not root/],
    ['no qemu', { qemuVersion: null, qemuAccels: [] }, /no qemu/],
    ['no TCG, KVM does not run a guest', { qemuAccels: ['kvm'], kvmDevice: true, kvmProbe: { kernel: '6.1.0-50-amd64', accel: 'tcg' } }, /no TCG and no working KVM/],
    ['a full disk', { cache: { dir: '/c', freeBytes: MIN_CACHE_FREE_BYTES - 1 } }, /too little cache space/],
  ];
  for (const [why, patch, says] of cases) {
    const r = doctorReport(facts(patch));
    t.equal(r.qemuRunner, false, why);
    t.match(r.summary[0], says, why);
  }
  const kvmOnly = doctorReport(facts({ qemuAccels: ['kvm'], kvmDevice: true, kvmProbe: { kernel: '6.1.0-50-amd64', accel: 'kvm' } }));
  t.equal(kvmOnly.qemuRunner, true, 'KVM that really ran a guest is enough');
  t.match(kvmOnly.summary[0], /KVM guests/);
  t.match(line(doctorReport(facts({ kvmDevice: true })), 'KVM'), [{ status: 'note', found: /no probe yet/ }]);
});

t.test('on this machine: the facts read, and daxpin doctor says them', async (t) => {
  const f = await gatherFacts({ probeKvm: false });
  t.equal(f.root, process.getuid?.() === 0);
  t.type(f.ioUring.works, 'boolean');
  const r = doctorReport(f);
  const cli = await runCli(['doctor', '--no-probe']);
  t.equal(cli.code, r.qemuRunner ? 0 : 2, cli.stdout);
  // Free space moves while other work runs; everything else must be the same.
  const steady = (text: string) => text.replace(/[\d.]+ GiB free/, 'N GiB free');
  t.equal(steady(cli.stdout), steady(renderDoctor(r)), 'the command prints the report of these facts');
  t.comment(cli.stdout);
});
