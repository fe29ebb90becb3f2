// Boots real Debian kernels under qemu with emulated pmem and checks, from inside the
// guest, that fsdax really works there: /dev/pmem0, XFS (reflink) mounted dax=always,
// statx reporting STATX_ATTR_DAX on a file, the host's node, FUSE, the fs_dax
// tracepoint. DAXPIN_TEST_KERNELS (default "6.1") lists the kernel specs to boot;
// DAXPIN_SKIP_VM=1 skips it.

import t from 'tap';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildInitramfs } from '../../lib/vm/initramfs';
import { resolveKernel } from '../../lib/vm/kernels';
import { ensureHostPackages } from '../../lib/vm/provision';
import { probeAccel } from '../../lib/vm/accel';
import { bootGuest } from '../../lib/vm/qemu';

const STATX_ATTR_DAX = 0x00200000;
const specs = (process.env.DAXPIN_TEST_KERNELS ?? '6.1').split(/[\s,]+/).filter(Boolean);
const SKIP = process.env.DAXPIN_SKIP_VM === '1' ? 'DAXPIN_SKIP_VM=1: the qemu guest tests are skipped' : false;

// Runs in the guest's chroot; every fact goes to the results share as key=value.
const GUEST_CHECK = String.raw`
out="$DAXPIN_RESULTS/facts"
fact() { echo "$1=$2" >> "$out"; sync; }
fact release "$(uname -r)"
[ -b /dev/pmem0 ] && fact pmem0 yes
mkfs.xfs -q -f -m reflink=1 /dev/pmem0 && fact mkfs ok
mkdir -p /mnt/pmem && mount -o dax=always /dev/pmem0 /mnt/pmem && fact mount ok
fact mount_options "$(awk '$2 == "/mnt/pmem" { print $3 " " $4 }' /proc/mounts)"
xfs_io -f -c 'pwrite -q 0 2m' -c fsync /mnt/pmem/file
fact statx_attributes "$(xfs_io -c 'statx -r' /mnt/pmem/file | awk '$1 == "stat.attributes" { print $3 }')"
fact node "$(node -e 'process.stdout.write(process.version)')"
modprobe fuse && [ -c /dev/fuse ] && fact fuse yes
[ -d /sys/kernel/tracing/events/fs_dax/dax_pmd_fault_done ] && fact pmd_tracepoint yes
umount /mnt/pmem && fact umount ok
`;

async function readFacts(file: string): Promise<Record<string, string>> {
  const facts: Record<string, string> = {};
  const text = await fs.readFile(file, 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const at = line.indexOf('=');
    if (at > 0) facts[line.slice(0, at)] = line.slice(at + 1);
  }
  return facts;
}

for (const spec of specs) {
  t.test(`kernel ${spec}: fsdax XFS in a qemu guest`, { skip: SKIP }, async (t) => {
    await ensureHostPackages({ log: (line) => t.comment(line) });
    const kernel = await resolveKernel(spec, { log: (line) => t.comment(line) });
    const initramfs = await buildInitramfs(kernel);
    const resultsDir = await fs.mkdtemp(path.join(os.tmpdir(), 'daxpin-boot-test-'));
    t.teardown(() => fs.rm(resultsDir, { recursive: true, force: true }));

    const result = await bootGuest({
      kernel,
      initramfs,
      accel: await probeAccel(kernel, initramfs),
      pmemMb: 1024,
      guestCommand: ['sh', '-c', GUEST_CHECK],
      resultsDir,
      timeoutMs: 10 * 60_000,
      idleTimeoutMs: 120_000,
    });
    t.comment(`${kernel.release} (${result.accel}): guest command started ${result.commandStartMs} ms after qemu, boot took ${result.durationMs} ms`);
    const failed = result.exitCode !== 0 || result.panicked || result.wedged || result.timedOut;
    t.equal(result.exitCode, 0, 'guest command ran to completion', failed ? { console: result.consoleTail.slice(-40).join('\n') } : {});
    t.notOk(result.panicked, 'no kernel panic');
    t.notOk(result.oopsed, 'no oops');
    t.equal(result.setupError, null, 'guest init set everything up');

    const facts = await readFacts(path.join(resultsDir, 'facts'));
    t.equal(facts.release, kernel.release, 'the guest runs the kernel asked for');
    t.equal(facts.pmem0, 'yes', '/dev/pmem0 exists');
    t.equal(facts.mkfs, 'ok', 'mkfs.xfs -m reflink=1 on /dev/pmem0');
    t.equal(facts.mount, 'ok', 'mount -o dax=always');
    t.match(facts.mount_options, /^xfs .*\bdax=always\b/, 'mounted as XFS with dax=always');
    t.ok((Number(facts.statx_attributes) & STATX_ATTR_DAX) !== 0, `statx says DAX (attributes ${facts.statx_attributes})`);
    t.equal(facts.node, process.version, "the guest runs the host's node");
    t.equal(facts.fuse, 'yes', 'modprobe fuse gives /dev/fuse');
    t.equal(facts.pmd_tracepoint, 'yes', 'fs_dax:dax_pmd_fault_done tracepoint exists');
    t.equal(facts.umount, 'ok', 'unmounts cleanly');
  });
}
