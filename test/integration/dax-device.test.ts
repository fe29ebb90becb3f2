// What daxpin must see on real fsdax, checked on a DAX device: the path a kernel
// developer with a DAX machine (or a VM with pmem) takes with
// `DAXPIN_TEST_DEVICE=/dev/pmemN npm test` — the device is formatted. The VM suite
// (test/vm/dax-device.test.ts) boots Debian kernels and runs exactly this file in the
// guest against its /dev/pmem0.
//
// The facts are kernel behaviour, measured; each says where it was measured. A daxpin
// that cannot see them (a faked syscall, a wait inferred from timing, a view never
// read) fails here:
//   - on every kernel measured (Debian 6.1.0-50 and 7.3.4+deb13 under qemu, emulated
//     pmem, runs of 2026-11-21 and 2026-12-03): IORING_REGISTER_BUFFERS (FOLL_LONGTERM)
//     on a DAX file is refused with EOPNOTSUPP; a truncate of a *mapped* DAX file waits
//     for an O_DIRECT read pinning its pages (break layouts), asleep in the kernel with
//     the pin held, and returns once the read completes;
//   - before the 6.15 fsdax page refcount rework (measured on 6.1.0-50 in four runs, and
//     on 6.12 per the all-series run): truncating an *unmapped* DAX file returns at once
//     while the O_DIRECT read still pins its block. What that exposes varies from run to
//     run (2026-12-03: ext4-dax logged WARNING fs/dax.c:398 dax_disassociate_entry, a
//     WARN_ON_ONCE, while xfs-dax's canary received the read's bytes; other runs had
//     both canaries foreign): so the test asks that the kernel be seen doing wrong in at
//     least one of the two configs — another file's bytes in a view, or a splat;
//   - from 6.15 on (measured on 7.3.4): that truncate waits too, and no view is foreign.
// The control (no pin) never waits, and no record of this file may carry a harness fault.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { CaseRecord } from '../../lib/outcome';
import { readRun } from '../../lib/report/runfile';
import { invariantViolations } from '../../lib/verdict';
import { runCli } from '../helpers/cli';

const device = process.env.DAXPIN_TEST_DEVICE;
const SKIP = device ? false : 'DAXPIN_TEST_DEVICE is not set (it names a pmem device this test formats)';

const CONFIGS = ['ext4-dax', 'xfs-dax'];
const CASES = {
  control: 'none.truncate-shrink.pte-shared',
  mapped: 'odirect-read.truncate-shrink.pte-shared',
  unmapped: 'odirect-read.truncate-shrink.pte-shared-unmapped',
  longterm: 'uring-fixed.punch-hole.pte-shared',
};

/** Upstream major.minor of the running kernel: 6.1.0-50-amd64 -> [6, 1]. */
function kernelVersion(): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(os.release());
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

const [major, minor] = kernelVersion();
const REFCOUNT_REWORK = major > 6 || (major === 6 && minor >= 15);
/** Frames of the filesystems' break-layouts paths: where a truncate waits for a pinned DAX page. */
const BREAK_LAYOUTS = /dax_layout_busy_page|break_dax_layouts|break_layouts|dax_break_layout|wait_page_idle|___wait_var_event/;

// Two configs set up and torn down on pmem: minutes under qemu's TCG.
t.test(`fsdax facts on ${device ?? '(no device)'} (${os.release()})`, { skip: SKIP, timeout: 15 * 60_000 }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'daxpin-dax-device-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const out = path.join(dir, 'run.jsonl');
  const args = ['run', '--device', device!, ...CONFIGS.flatMap((c) => ['--config', c]), ...Object.values(CASES).flatMap((c) => ['--cases', c]), '--out', out];
  const r = await runCli(args);
  t.comment(`daxpin ${args.join(' ')} -> exit ${r.code}\n${r.stderr}`);
  const run = readRun(out);
  t.ok(run.run.provenance?.pmem.some((p) => p.device === device), 'the run record names the pmem device it ran on');
  if (!REFCOUNT_REWORK) {
    const exposed = run.cases.filter((c) => c.caseId === CASES.unmapped && invariantViolations(c).some((v) => v.kind === 'foreign-data' || v.kind === 'kernel-log'));
    t.ok(exposed.length > 0, `before 6.15 the pinned, freed block is seen misused: ${exposed.map((c) => `${c.config}: ${invariantViolations(c).map((v) => v.kind).join(', ')}`).join('; ') || 'in no config'}`);
  }
  for (const config of CONFIGS) {
    t.test(config, async (t) => {
      const rec = (id: string): CaseRecord => {
        const found = run.cases.find((c) => c.config === config && c.caseId === id);
        if (!found) throw new Error(`no record of ${config}/${id}`);
        return found;
      };
      const configRec = run.configs.find((c) => c.config === config);
      t.equal(configRec?.daxVerified, true, 'statx says DAX on the test file');
      for (const id of Object.values(CASES)) t.same(rec(id).harnessFaults ?? [], [], `${id}: no harness fault`);

      const control = rec(CASES.control);
      t.equal(control.op.ok, true, 'the control truncate succeeds');
      t.equal(control.op.blockedUntilRelease, false, 'and, with no pin, never waits');

      const longterm = rec(CASES.longterm);
      t.same({ ok: longterm.pin.ok, errno: longterm.pin.errno, held: longterm.pin.held }, { ok: false, errno: 'EOPNOTSUPP', held: false }, 'a FOLL_LONGTERM registration of DAX pages is refused with EOPNOTSUPP');

      const mapped = rec(CASES.mapped);
      t.equal(mapped.pin.held, true, `the O_DIRECT read was seen held (${mapped.pin.evidence})`);
      t.equal(mapped.op.blockedUntilRelease, true, 'truncate of a mapped, pinned DAX file waits for the release');
      t.ok(mapped.op.wait && ['S', 'D'].includes(mapped.op.wait.state), `asleep in the kernel (${mapped.op.wait?.state})`);
      t.match(mapped.op.wait?.site.join(' '), BREAK_LAYOUTS, `in break layouts: ${mapped.op.wait?.site.slice(0, 6).join(' < ')}`);
      t.equal(mapped.release.result, 4 * 4096, 'the read completed in full after the release');

      const unmapped = rec(CASES.unmapped);
      t.equal(unmapped.pin.held, true, `the O_DIRECT read was seen held (${unmapped.pin.evidence})`);
      if (REFCOUNT_REWORK) {
        t.equal(unmapped.op.blockedUntilRelease, true, 'from 6.15 on, truncate of an unmapped pinned DAX file waits too');
        t.match(unmapped.op.wait?.site.join(' '), BREAK_LAYOUTS, `in break layouts: ${unmapped.op.wait?.site.slice(0, 6).join(' < ')}`);
        t.same(invariantViolations(unmapped).filter((v) => v.kind === 'foreign-data'), [], 'no view holds another file\'s bytes');
      } else {
        t.equal(unmapped.op.blockedUntilRelease, false, 'before 6.15, truncate of an unmapped pinned DAX file does not wait');
        t.equal(unmapped.op.asleepAtRelease, false, 'it had returned: its thread was not asleep at the release');
        if (unmapped.views.canary === 'foreign') {
          t.ok(unmapped.viewDetail.canary?.foreignFrom.includes('file'), `whose bytes: the pinned file's (${unmapped.viewDetail.canary?.foreignFrom})`);
          t.ok((unmapped.canary.reusedPinnedBytes ?? 0) > 0, `the canary sits on the block the pinned range had (${unmapped.canary.reusedPinnedBytes} bytes)`);
        }
      }
    });
  }
});
