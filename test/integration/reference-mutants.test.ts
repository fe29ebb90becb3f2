// The raw-fact comparison fails when daxpin's addon lies: a representative slice of
// `npm run mutate:addon` (which runs every mutation over every case that makes the
// syscall). Each mutation answers one syscall of the addon without the kernel
// (test/reference/lying-addon.c, LD_PRELOAD); the comparison of that case must fail,
// on that case. With the library loaded and no lie, the same cases must pass: the
// failures come from the lie, not from the preload. Needs root.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { Mutation, buildLyingAddon, runMutant } from '../reference/mutate-addon';

const SLICE: Mutation[] = [
  { lie: 'ftruncate', cases: 'none.truncate-shrink.pte-shared', configs: 'tmpfs' },
  { lie: 'punch-hole', cases: 'vmsplice.punch-hole.pte-shared', configs: 'tmpfs' },
  { lie: 'copy-range', cases: 'none.copy-range.pte-shared', configs: 'ext4' },
  { lie: 'ficlone:EOPNOTSUPP', cases: 'none.ficlone-dest.pte-shared', configs: 'xfs' },
  { lie: 'write', cases: 'odirect-write.punch-hole.pte-shared', configs: 'tmpfs' },
  { lie: 'uring-io', cases: 'uring-read.punch-hole.pte-shared', configs: 'tmpfs' },
  { lie: 'uring-register', cases: 'uring-fixed.punch-hole.pte-shared', configs: 'ext4' },
  { lie: 'vmsplice', cases: 'vmsplice.punch-hole.pte-shared', configs: 'tmpfs' },
  { lie: 'unlink', cases: 'none.unlink.pte-shared', configs: 'tmpfs' },
  { lie: 'aio-io', cases: 'aio-read.punch-hole.pte-shared', configs: 'tmpfs' },
  { lie: 'freeze', cases: 'none.freeze.pte-shared', configs: 'ext4' },
  // A real unmount of tmpfs loses the file; the lie leaves it (file.pathAfter).
  { lie: 'umount', cases: 'none.umount.pte-shared-unmapped', configs: 'tmpfs' },
];

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'daxpin-mutants-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const shim = buildLyingAddon(dir);

t.test('with the preload and no lie, the slice agrees with the reference', async (t) => {
  const configs = [...new Set(SLICE.map((m) => m.configs!))].join(',');
  const r = runMutant(shim, { lie: '', cases: [...new Set(SLICE.map((m) => m.cases))].join(','), configs });
  t.equal(r.caught, false, 'no case disagreed');
  t.same(r.failed, []);
});

for (const m of SLICE) {
  t.test(`a lying ${m.lie} is caught`, async (t) => {
    const r = runMutant(shim, m);
    t.comment(`${r.seconds} s; failed: ${r.failed.join(' ')}`);
    t.ok(r.caught, 'the comparison failed');
    t.ok(r.failed.includes(`${m.configs}/${m.cases}`), `on ${m.configs}/${m.cases}`);
  });
}
