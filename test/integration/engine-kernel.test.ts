// Real cases on this host's kernel through the real engine (orchestrator, worker,
// FUSE peer) on scratch ext4, XFS and tmpfs. Every assertion is about something the
// kernel did, and where a value could be anything, it is compared with the same
// syscall made directly by this test on the same filesystem. Needs root.
import t from 'tap';
import { CaseRecord } from '../../lib/outcome';
import { TIMING, directRegisterBuffers, directVmspliceThenTruncate, scratch } from '../helpers/engine';
import { NOTHING_LEFT, leftovers } from '../helpers/machine';

const HOLD = TIMING.holdMs;
const CASES = [
  'none.truncate-shrink.pte-shared',
  'none.punch-hole.pte-shared',
  'uring-fixed.truncate-shrink.pte-shared',
  'vmsplice.unlink.pte-shared',
  'vmsplice.truncate-shrink.pte-shared',
  'odirect-read.unlink.pte-shared',
  'odirect-read.truncate-shrink.pte-shared',
];

const brief = (r: CaseRecord) =>
  JSON.stringify({ status: r.status, pin: r.pin, op: { ok: r.op.ok, errno: r.op.errno, returnedMs: r.op.returnedMs }, views: r.views, sigbus: r.sigbus, release: r.release, error: r.error });

const workDirs: string[] = [];

for (const configName of ['ext4', 'xfs', 'tmpfs']) {
  t.test(`${configName}: what the kernel did`, async (t) => {
    const s = await scratch(configName);
    workDirs.push(s.workDir);
    t.teardown(() => s.close());
    const recs = await s.run(CASES);
    // The same syscalls, made by this test on the same filesystem.
    const direct = {
      register: directRegisterBuffers(s.prepared.testDir),
      vmspliceTruncate: await directVmspliceThenTruncate(s.prepared.testDir),
    };
    t.comment(`direct: ${JSON.stringify(direct)}`);
    const rec = (id: string): CaseRecord => {
      const r = recs.get(id)!;
      t.comment(`${id}: ${brief(r)}`);
      return r;
    };
    for (const r of recs.values()) t.equal(r.status, 'done', `${r.caseId} ran to the end`);

    t.test('control: truncate below the mapped range makes the buffer read take SIGBUS; a hole does not', async (t) => {
      const cut = rec('none.truncate-shrink.pte-shared');
      t.ok(cut.op.ok, 'ftruncate worked');
      t.ok(cut.sigbus.includes('buffer'), 'SIGBUS reading the pinned range past the new EOF');
      t.equal(cut.views.buffer, 'n/a', 'nothing could be read there');
      const hole = rec('none.punch-hole.pte-shared');
      t.ok(hole.op.ok, 'punch-hole worked');
      t.same(hole.sigbus, [], 'a punched hole inside the file reads without SIGBUS');
      t.equal(hole.views.buffer, 'zero', 'and reads as zeroes');
      t.equal(hole.views.file, 'zero');
    });

    t.test('IORING_REGISTER_BUFFERS: the errno is the kernel\'s', async (t) => {
      const r = rec('uring-fixed.truncate-shrink.pte-shared');
      t.same({ ok: r.pin.ok, errno: r.pin.errno }, direct.register, 'daxpin records what the same syscall returns when the test makes it');
      t.equal(r.pin.held, r.pin.ok, 'held exactly when the kernel accepted the registration');
      // Since 6.5, mm/gup.c refuses writable FOLL_LONGTERM pins of file pages that
      // need dirty tracking (EFAULT), which io_uring's registration asks for; shmem is
      // exempt. The direct call above is what makes this kernel-derived: had the
      // kernel granted the pin on ext4/XFS, it would have granted the test's too.
      if (configName === 'tmpfs') {
        t.equal(r.pin.ok, true, 'granted on shmem');
        t.not(r.release.ms, null, 'and later unregistered');
      } else {
        t.equal(r.pin.ok, false, `refused on ${configName} page cache`);
        t.match(r.pin.errno, /^E[A-Z0-9]+$/, `with an errno (${r.pin.errno})`);
        t.equal(r.release.ms, null, 'nothing to release');
      }
    });

    t.test('vmsplice takes references: bytes written through the mapping afterwards come out of the pipe', async (t) => {
      const r = rec('vmsplice.unlink.pte-shared');
      t.ok(r.pin.ok, 'vmsplice worked');
      t.ok(r.op.ok, 'unlink worked');
      t.equal(r.views.pipe, 'written', 'the pipe holds what was written after vmsplice, not a copy of the original');
      t.equal(r.views.buffer, 'written');
      const cut = rec('vmsplice.truncate-shrink.pte-shared');
      t.equal(cut.views.pipe, direct.vmspliceTruncate, `after a truncate the pipe holds what the test sees doing the same (${direct.vmspliceTruncate})`);
    });

    t.test('a held O_DIRECT read pin: the op does not wait, the peer\'s reply lands in the buffer', async (t) => {
      const kept = rec('odirect-read.unlink.pte-shared');
      t.ok(kept.pin.ok, 'the FUSE read was held by the peer');
      t.ok(kept.release.ok, 'released');
      t.not(kept.release.ms, null, 'the read completed only when the peer replied');
      t.equal(kept.views.buffer, 'written', "the buffer holds the peer's reply (it exists only after the release)");
      t.equal(kept.op.blockedUntilRelease, false, 'unlink returned while the read was held');
      const cut = rec('odirect-read.truncate-shrink.pte-shared');
      t.ok(cut.op.ok, 'ftruncate worked while the pin was held');
      t.ok(cut.op.returnedMs !== null && cut.op.returnedMs < HOLD, `page-cache truncate did not wait for the pin (${cut.op.returnedMs} ms < ${HOLD})`);
      t.equal(cut.op.blockedUntilRelease, false);
      t.equal(cut.op.afterReleaseMs, null);
      t.not(cut.release.ms, null, 'the pin was still there to release after the op');
    });
  });
}

t.test('no mount, loop device, worker or peer is left', async (t) => {
  t.equal(workDirs.length, 3);
  for (const dir of workDirs) t.same(leftovers(dir), NOTHING_LEFT, dir);
});
