// Records must come from the kernel, not from constants: values that must change
// between two runs of the same case change, a pin is held only as long as the op
// takes, a kernel log line the test writes during a case shows up in that case only,
// and the io_uring registration outcome differs between tmpfs and ext4 exactly as
// the test's own syscalls on those filesystems differ. Needs root.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { invariantViolations } from '../../lib/verdict';
import { CaseRecord } from '../../lib/outcome';
import { Scratch, TIMING, directRegisterBuffers, scratch } from '../helpers/engine';
import { NOTHING_LEFT, leftovers } from '../helpers/machine';

const only = async (s: Scratch, id: string, holdMs: number): Promise<CaseRecord> => (await s.run([id], { ...TIMING, holdMs })).get(id)!;

t.test('tmpfs and ext4', async (t) => {
  const tmpfs = await scratch('tmpfs');
  t.teardown(() => tmpfs.close());
  const ext4 = await scratch('ext4');
  t.teardown(() => ext4.close());

  t.test('the same case three times: start times and timings are measured anew', async (t) => {
    const id = 'odirect-read.unlink.pte-shared';
    const recs: CaseRecord[] = [];
    for (let i = 0; i < 3; i++) recs.push(await only(tmpfs, id, 150));
    for (const r of recs) {
      t.equal(r.status, 'done');
      t.ok(r.durationMs > 0 && r.op.returnedMs !== null && r.op.returnedMs <= r.durationMs, `op ${r.op.returnedMs} ms within the case's ${r.durationMs} ms`);
      t.ok(Date.now() - Date.parse(r.startedAt) < 120_000, 'started just now');
    }
    t.equal(new Set(recs.map((r) => r.startedAt)).size, 3, 'three start times');
    const timings = recs.map((r) => JSON.stringify([r.durationMs, r.op.returnedMs, r.release.ms]));
    t.comment(timings.join(' '));
    t.ok(new Set(timings).size > 1, 'durations, op return times and release times are not all the same');
  });

  t.test('a pin is held until the op returns: a page-cache op returns at once, so a long hold ends early', async (t) => {
    const id = 'odirect-read.punch-hole.pte-shared';
    await tmpfs.run([id], { ...TIMING, holdMs: 5000 }); // that timing's worker starts here
    const r = await only(tmpfs, id, 5000);
    t.equal(r.holdMs, 5000);
    t.ok(r.op.ok && r.op.returnedMs !== null, `punch-hole returned after ${r.op.returnedMs} ms`);
    t.equal(r.op.blockedUntilRelease, false, 'before the release');
    t.not(r.release.ms, null, 'the pin was released after it');
    t.ok(r.durationMs < 2500, `the case took ${r.durationMs} ms, not the 5 s hold`);
    t.ok(r.op.returnedMs! <= r.durationMs);
  });

  t.test('a kernel log line logged during a case is in that case\'s record, and only there; a user-space line is not', async (t) => {
    // The kernel logs "COMM (PID): drop_caches: 2" for whoever writes drop_caches: a
    // shell whose comm is the nonce makes the kernel itself log a line we can find.
    const nonce = `dx${randomBytes(6).toString('hex')}`;
    const id = 'odirect-read.punch-hole.pte-shared';
    // A case that lasts: with a FUSE peer that answers nothing (test hook, inherited
    // by the worker forked for this timing) the release waits its 1.5 s settle time.
    const slow = { ...TIMING, holdMs: 800, settleMs: 1500 };
    await tmpfs.run(['none.punch-hole.pte-shared'], { ...TIMING, holdMs: 51 }); // a worker for the case after
    process.env.DAXPIN_TEST_PEER_NO_REPLY = '1';
    const running = tmpfs.run([id], slow).finally(() => delete process.env.DAXPIN_TEST_PEER_NO_REPLY);
    await new Promise((r) => setTimeout(r, 600));
    fs.writeFileSync('/dev/kmsg', `<4>WARNING: user space ${nonce}\n`);
    execFileSync('sh', ['-c', `printf ${nonce} > /proc/$$/comm && echo 2 > /proc/sys/vm/drop_caches`]);
    const during = (await running).get(id)!;
    const after = await only(tmpfs, 'none.punch-hole.pte-shared', 51);
    t.ok(during.durationMs > 600, `the case lasted past the line (${during.durationMs} ms)`);
    const line = during.kernelLog.find((l) => l.text.includes(nonce) && l.text.includes('drop_caches'));
    t.ok(line, "the kernel's line is in the case that ran while it was logged");
    t.equal(line?.level, 6, 'at the level the kernel logged it with (pr_info)');
    t.notOk(during.kernelLog.some((l) => l.text.includes(`user space ${nonce}`)), 'a user-space "WARNING" written to /dev/kmsg is not the kernel\'s');
    t.same(invariantViolations(during).filter((v) => v.kind === 'kernel-log'), [], 'and no violation');
    t.notOk(after.kernelLog.some((l) => l.text.includes(nonce)), 'and not in the next case');
  });

  t.test('io_uring registration: tmpfs and ext4 differ as the kernel says they do', async (t) => {
    const id = 'uring-fixed.punch-hole.pte-shared';
    const direct = { tmpfs: directRegisterBuffers(tmpfs.prepared.testDir), ext4: directRegisterBuffers(ext4.prepared.testDir) };
    const rec = { tmpfs: await only(tmpfs, id, 50), ext4: await only(ext4, id, 50) };
    t.comment(`direct ${JSON.stringify(direct)}; daxpin tmpfs ${JSON.stringify(rec.tmpfs.pin)} ext4 ${JSON.stringify(rec.ext4.pin)}`);
    t.notSame(direct.tmpfs, direct.ext4, 'the kernel treats the two differently');
    const syscall = (p: { ok: boolean; errno: string | null }) => ({ ok: p.ok, errno: p.errno });
    t.same(syscall(rec.tmpfs.pin), direct.tmpfs, 'daxpin on tmpfs says what the kernel said to the test');
    t.same(syscall(rec.ext4.pin), direct.ext4, 'daxpin on ext4 says what the kernel said to the test');
    t.equal(rec.tmpfs.pin.held, rec.tmpfs.pin.ok, 'a registration the kernel accepted is a pin seen held');
  });

  t.test('nothing is left once both are torn down', async (t) => {
    await tmpfs.close();
    await ext4.close();
    t.same(leftovers(tmpfs.workDir), NOTHING_LEFT);
    t.same(leftovers(ext4.workDir), NOTHING_LEFT);
  });
});
