// `npm test` on a DAX machine, tested: boots real Debian kernels under qemu with
// emulated pmem and runs, inside each guest, the suite's native DAX tests against its
// /dev/pmem0 — exactly what a user with a DAX-enabled VM does with
// `DAXPIN_TEST_DEVICE=/dev/pmem0 npm test`: test/integration/dax-device.test.ts, what
// daxpin must see on fsdax (facts measured per kernel, written there; DAX verified by
// statx in each DAX config among them). The rest of the suite's files test this host's
// loop devices and page cache, not DAX: they stay out of the guest.
//
// DAXPIN_SKIP_VM=1 skips it; DAXPIN_VM_TEST_KERNELS (default "6.1,latest") names the kernels.

import t from 'tap';
import fsSync, { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildInitramfs } from '../../lib/vm/initramfs';
import { resolveKernel } from '../../lib/vm/kernels';
import { ensureHostPackages } from '../../lib/vm/provision';
import { probeAccel } from '../../lib/vm/accel';
import { bootGuest } from '../../lib/vm/qemu';

const SKIP = process.env.DAXPIN_SKIP_VM === '1' ? 'DAXPIN_SKIP_VM=1: the qemu guest tests are skipped' : false;
const KERNELS = (process.env.DAXPIN_VM_TEST_KERNELS ?? '6.1,latest').split(/[\s,]+/).filter(Boolean);
const TESTS = ['dist/test/integration/dax-device.test.js'];
const REPO = path.resolve(__dirname, '..', '..', '..');
const TAP_FILE_TIMEOUT_S = (JSON.parse(fsSync.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { tap: { timeout: number } }).tap.timeout;

for (const spec of KERNELS) {
  t.test(`kernel ${spec}: the native DAX tests pass in a guest against /dev/pmem0`, { skip: SKIP }, async (t) => {
    await ensureHostPackages({ log: (line) => t.comment(line) });
    const kernel = await resolveKernel(spec, { log: (line) => t.comment(line) });
    const initramfs = await buildInitramfs(kernel);
    const resultsDir = await fs.mkdtemp(path.join(os.tmpdir(), 'daxpin-dax-device-'));
    t.teardown(() => fs.rm(resultsDir, { recursive: true, force: true }));
    // Each file runs as tap runs it (a plain node process printing TAP); its TAP and its
    // exit status go to the results share.
    const script = TESTS.map((f) => `node ${f} > "$DAXPIN_RESULTS/${path.basename(f)}.tap" 2>&1; echo "${f} $?" >> "$DAXPIN_RESULTS/status"; sync`).join('\n');
    const accel = await probeAccel(kernel, initramfs);
    const boot = () =>
      bootGuest({
        kernel,
        initramfs,
        accel,
        pmemMb: 1024,
        guestCommand: ['sh', '-c', script],
        // TAP_TIMEOUT: tap gives each file package.json's timeout; a plain node process
        // running a test file stops it after tap's default 30 s (the 6.1 facts take 30 s
        // under TCG on a busy host).
        env: { DAXPIN_TEST_DEVICE: '/dev/pmem0', TAP_TIMEOUT: String(TAP_FILE_TIMEOUT_S) },
        cwd: REPO,
        resultsDir,
        timeoutMs: 20 * 60_000,
        idleTimeoutMs: 240_000,
      });
    // A kernel that dies in its own boot, before the guest command starts, gets one fresh
    // boot, as the VM runner gives it (7.3 booted via PVH under TCG does so now and then:
    // an int3 Oops while it patches its own text; README).
    let result = await boot();
    if (result.commandStartMs === null && (result.panicked || result.oopsed)) {
      t.comment(`${kernel.release} died in its own boot; one fresh boot:\n${result.consoleTail.slice(-12).join('\n')}`);
      result = await boot();
    }
    t.comment(`${kernel.release} (${result.accel}): ${result.durationMs} ms`);
    t.equal(result.exitCode, 0, 'the guest command finished', result.exitCode !== 0 ? { console: result.consoleTail.slice(-60).join('\n') } : {});
    t.notOk(result.panicked, 'no kernel panic');
    const status = (await fs.readFile(path.join(resultsDir, 'status'), 'utf8').catch(() => '')).trim().split('\n');
    for (const f of TESTS) {
      const tap = await fs.readFile(path.join(resultsDir, `${path.basename(f)}.tap`), 'utf8').catch(() => '');
      const failed = tap.split('\n').filter((l) => /not ok|^\s*#/.test(l));
      t.comment(failed.slice(0, 80).join('\n'));
      const line = status.find((l) => l.startsWith(`${f} `));
      t.equal(line, `${f} 0`, `${path.basename(f)} passed in the guest on ${kernel.release}`, { tap: failed.slice(0, 60).join('\n') });
    }
  });
}
