// A generated C reproducer of a DAX case, run in a qemu guest on real fsdax next to
// daxpin's own run of the same case in the same boot, shows what daxpin recorded:
// whether the op returned while the pin was held, and whether another file's bytes
// reached a canary. Kernel: DAXPIN_REPRO_KERNEL (default 6.1); DAXPIN_SKIP_VM=1 skips.
// The reproducer runs first (WARN_ON_ONCE fires once per boot: its WARNING is its own).

import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { reproCase, renderReproC, renderReproSetup } from '../../lib/findings/repro-c';
import { readRun } from '../../lib/report/runfile';
import { classHead, outcomeClass } from '../../lib/verdict';
import { buildInitramfs } from '../../lib/vm/initramfs';
import { resolveKernel } from '../../lib/vm/kernels';
import { ensureHostPackages } from '../../lib/vm/provision';
import { probeAccel } from '../../lib/vm/accel';
import { bootGuest } from '../../lib/vm/qemu';

const SKIP = process.env.DAXPIN_SKIP_VM === '1' ? 'DAXPIN_SKIP_VM=1: the qemu guest tests are skipped' : false;
const SPEC = process.env.DAXPIN_REPRO_KERNEL ?? '6.1';
const CONFIG = 'ext4-dax';
const CASE = 'odirect-read.truncate-shrink.pte-shared-unmapped';
const HOLD_MS = 1000;
const ROOT = path.resolve(__dirname, '..', '..', '..');

t.test(`the C reproducer of ${CONFIG}/${CASE} on ${SPEC} shows what daxpin recorded`, { skip: SKIP }, async (t) => {
  await ensureHostPackages({ log: (line) => t.comment(line) });
  const kernel = await resolveKernel(SPEC, { log: (line) => t.comment(line) });
  const initramfs = await buildInitramfs(kernel);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'daxpin-repro-vm-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const c = reproCase(CONFIG, CASE);
  const opts = { holdMs: HOLD_MS, settleMs: 2000, canaryKb: 1024 };
  await fs.writeFile(path.join(dir, 'repro.c'), renderReproC(c, opts));
  await fs.writeFile(path.join(dir, 'setup.sh'), renderReproSetup(c, opts));
  const cli = path.join(ROOT, 'dist', 'lib', 'cli.js');
  const script = [
    `MNT=/mnt/repro sh ${dir}/setup.sh /dev/pmem0 > ${dir}/repro.txt 2>&1`,
    `dmesg | grep -E 'WARNING|BUG' > ${dir}/repro-dmesg.txt || true`,
    `${process.execPath} ${cli} run --device /dev/pmem0 --config ${CONFIG} --cases '${CASE}' --hold-ms ${HOLD_MS} --out ${dir}/run.jsonl > ${dir}/run.txt 2>&1 || true`,
  ].join('\n');
  const result = await bootGuest({
    kernel,
    initramfs,
    accel: await probeAccel(kernel, initramfs),
    pmemMb: 1024,
    guestCommand: ['sh', '-c', script],
    resultsDir: dir,
    cwd: ROOT,
    timeoutMs: 10 * 60_000,
    idleTimeoutMs: 180_000,
  });
  t.equal(result.exitCode, 0, 'the guest command ran', result.exitCode !== 0 ? { console: result.consoleTail.slice(-30).join('\n') } : {});
  const repro = await fs.readFile(path.join(dir, 'repro.txt'), 'utf8').catch(() => '');
  const dmesg = await fs.readFile(path.join(dir, 'repro-dmesg.txt'), 'utf8').catch(() => '');
  t.comment(`reproducer on ${kernel.release}:\n${repro}\nkernel log after it: ${dmesg.trim() || 'no WARNING/BUG'}`);
  const run = readRun(path.join(dir, 'run.jsonl'));
  const rec = run.cases.find((r) => r.caseId === CASE);
  t.ok(rec, 'daxpin recorded the case');
  if (!rec) return;
  const head = classHead(outcomeClass(rec));
  t.comment(`daxpin on ${rec.kernel}: ${outcomeClass(rec)}, op returned after ${rec.op.returnedMs} ms, canary ${rec.views.canary}`);
  const op = /^op: .*$/m.exec(repro)?.[0] ?? '';
  t.match(op, /^op: truncate-shrink /, 'the reproducer ran the op');
  t.equal(/BEFORE the release/.test(op), head === 'ok' || head === 'op-refused', 'the op returned before the release in both, or in neither');
  const canary = /canary=(\S+)/.exec(repro)?.[1];
  t.ok(canary, `the reproducer read its canaries (${canary})`);
});
