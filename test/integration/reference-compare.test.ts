// daxpin against an independent program: every layout op × every pin method × the
// default mappings, on tmpfs, loop ext4 and loop XFS, run once by daxpin's engine
// and once by test/reference/case.c (plain syscalls, its own FUSE peer, its own
// pattern decoder) in the same directory; the raw facts must agree (see
// test/reference/facts.ts for what is compared and what is left out). A daxpin whose
// addon skipped or faked a syscall records facts the kernel did not produce, and
// fails here: `npm run mutate:addon` proves it per syscall. Needs root.
//
// DAXPIN_REFERENCE_CONFIGS (default tmpfs,ext4,xfs) and DAXPIN_REFERENCE_CASES (a
// case glob, comma-separated) narrow it, for the mutation runs.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { LAYOUT_OPS, casesFor, filterCases, findConfig } from '../../lib/cases/matrix';
import { CaseRecord } from '../../lib/outcome';
import { TIMING, scratch } from '../helpers/engine';
import { Reference, ReferenceFacts, buildReference } from '../reference/client';
import { factDifferences, sleptWhileHolding } from '../reference/facts';

const CONFIGS = (process.env.DAXPIN_REFERENCE_CONFIGS ?? 'tmpfs,ext4,xfs').split(',').filter(Boolean);
const GLOBS = process.env.DAXPIN_REFERENCE_CASES?.split(',').filter(Boolean);
// The pins and ops test/reference/case.c makes itself: every op, and every pin this
// host's kernel supports. Not the NBD pins (nbd-*): this host's kernel has no nbd
// module, and not the RDMA pins (rdma-mr*): no rdma_rxe module here, and daxpin adds
// the soft-RoCE device only in guests it boots. daxpin records those cases
// `unsupported` here; they are run (and checked) in guests.
const REFERENCE_PINS = ['none', 'odirect-read', 'odirect-write', 'uring-read', 'uring-write', 'aio-read', 'aio-write', 'uring-fixed', 'vmsplice'];
const REFERENCE_OPS = LAYOUT_OPS.map((o) => o.name);
// Both sides hold alike. On page cache no op waits for a pin, so the hold ends when
// the op returns; it is long so that a machine under load cannot make an op outlast
// it on one side only (whether canaries are written depends on that).
const HOLD_MS = 2000;
const RETRIES = 2;

const binDir = fs.mkdtempSync(path.join(os.tmpdir(), 'daxpin-reference-'));
t.teardown(() => fs.rmSync(binDir, { recursive: true, force: true }));
const binary = buildReference(binDir);

for (const configName of CONFIGS) {
  t.test(`${configName}: daxpin's records agree with the reference's raw facts`, async (t) => {
    const cases = filterCases(casesFor(findConfig(configName)!, 'default'), GLOBS).filter(
      (c) => REFERENCE_PINS.includes(c.pinMethod.name) && REFERENCE_OPS.includes(c.layoutOp.name),
    );
    if (cases.length === 0) {
      t.comment('no case matches DAXPIN_REFERENCE_CASES');
      return;
    }
    const s = await scratch(configName);
    t.teardown(() => s.close());
    const ids = cases.map((c) => c.id);
    const records: Map<string, CaseRecord> = await s.run(ids, { ...TIMING, holdMs: HOLD_MS });
    const ref = new Reference(binary, s.prepared.testDir, {
      // The hold daxpin's records were made with.
      holdMs: HOLD_MS,
      holdMode: TIMING.holdMode,
      dwellMs: TIMING.dwellMs,
      settleMs: TIMING.settleMs,
      canaryBytes: TIMING.canaryBytes,
      extentHint: s.prepared.pmdExtentHint,
      fuseDir: s.workDir,
      // The freeze and umount ops act on the filesystem daxpin mounted, as daxpin's do.
      mount: s.prepared.mount,
    });
    t.teardown(() => ref.close());
    const facts = new Map<string, ReferenceFacts>();
    for (const id of ids) facts.set(id, await ref.run(id));
    // A case where either side's op slept in its call while holding (writeback under
    // load, say) may go either way on either side: whether the op ran before or after
    // the pinned I/O completed. Such a case that disagrees runs again on both sides, up
    // to RETRIES times, and must agree once. A lie disagrees every time.
    for (let attempt = 1; attempt <= RETRIES; attempt++) {
      const again = ids.filter((id) => factDifferences(records.get(id)!, facts.get(id)!).length > 0 && sleptWhileHolding(records.get(id)!, facts.get(id)!));
      if (again.length === 0) break;
      t.comment(`again (${attempt}/${RETRIES}), an op slept while holding and the facts differ: ${again.join(' ')}`);
      const more = await s.run(again, { ...TIMING, holdMs: HOLD_MS });
      for (const id of again) {
        records.set(id, more.get(id)!);
        facts.set(id, await ref.run(id));
      }
    }

    const byPin = new Map<string, string[]>();
    for (const c of cases) byPin.set(c.pinMethod.name, [...(byPin.get(c.pinMethod.name) ?? []), c.id]);
    for (const [pin, pinIds] of byPin) {
      t.test(pin, async (t) => {
        for (const id of pinIds) {
          const diff = factDifferences(records.get(id)!, facts.get(id)!);
          t.same(diff, [], id);
          if (diff.length) {
            const r = records.get(id)!;
            t.comment(`${id} daxpin: ${JSON.stringify({ op: r.op, release: r.release, canary: r.canary, notes: r.notes, durationMs: r.durationMs })}`);
            t.comment(`${id} reference: ${JSON.stringify(facts.get(id))}`);
          }
        }
      });
    }
  });
}
