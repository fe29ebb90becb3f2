// The hold policy and the op thread's wait: pure functions over samples of
// /proc/self/task/TID. No kernel needed.
import t from 'tap';
import { HoldPolicy, STACK_EVERY, ThreadSample, asleepSince, frameName, hungAfterSignal, isAsleep, lastWait, shouldRelease, stackDue } from '../../lib/engine/hold';

const sample = (atMs: number, state: string | null, inCall = true, stack: string[] | null = null): ThreadSample => ({ atMs, inCall, state, wchan: null, stack });
const evidence: HoldPolicy = { mode: 'evidence', holdMs: 200, dwellMs: 25 };

t.test('asleep means in the call and in S or D', async (t) => {
  t.ok(isAsleep(sample(1, 'S')));
  t.ok(isAsleep(sample(1, 'D')));
  t.notOk(isAsleep(sample(1, 'R')), 'running');
  t.notOk(isAsleep(sample(1, 'S', false)), 'asleep outside the call: the pool thread waiting for work');
  t.notOk(isAsleep(sample(1, null)));
});

t.test('asleepSince is the start of the current uninterrupted sleep', async (t) => {
  t.equal(asleepSince([]), null);
  t.equal(asleepSince([sample(1, 'R'), sample(3, 'D'), sample(5, 'D')]), 3);
  t.equal(asleepSince([sample(1, 'D'), sample(3, 'R'), sample(5, 'S'), sample(7, 'S')]), 5, 'a wake-up starts the dwell over');
  t.equal(asleepSince([sample(1, 'D'), sample(3, 'R')]), null, 'awake now');
});

t.test('evidence: release when the op returned, after a dwell asleep, or at the hold bound', async (t) => {
  t.ok(shouldRelease(evidence, 5, true, null), 'returned');
  t.notOk(shouldRelease(evidence, 20, false, 3), 'asleep 17 ms < dwell');
  t.ok(shouldRelease(evidence, 28, false, 3), 'asleep 25 ms');
  t.notOk(shouldRelease(evidence, 150, false, null), 'awake, under the bound');
  t.ok(shouldRelease(evidence, 200, false, null), 'the bound');
});

t.test('fixed: only the hold bound releases', async (t) => {
  const fixed: HoldPolicy = { ...evidence, mode: 'fixed' };
  t.notOk(shouldRelease(fixed, 5, true, null));
  t.notOk(shouldRelease(fixed, 150, false, 3));
  t.ok(shouldRelease(fixed, 200, false, null));
});

t.test('frameName drops the offset', async (t) => {
  t.equal(frameName('dax_layout_busy_page_range+0x1a/0x2b0'), 'dax_layout_busy_page_range');
  t.equal(frameName('xfs_break_dax_layouts+0x5c/0xe0 [xfs]'), 'xfs_break_dax_layouts');
  t.equal(frameName('? schedule+0x1/0x2'), 'schedule');
});

t.test('lastWait: the most recent sleep, its state and site, from its first sample', async (t) => {
  t.equal(lastWait([sample(1, 'R'), sample(2, 'S', false)]), null, 'never asleep in the call');
  const site = ['schedule+0x1/0x2', 'dax_layout_busy_page_range+0x1a/0x2b0', 'xfs_break_dax_layouts+0x5c/0xe0 [xfs]'];
  const w = lastWait([sample(1, 'R'), sample(2.04, 'D', true, site), sample(4, 'D', true, site), sample(6, 'D')]);
  t.same(w, { state: 'D', wchan: null, site: ['schedule', 'dax_layout_busy_page_range', 'xfs_break_dax_layouts'], atMs: 2 });
  const later = lastWait([sample(1, 'S', true, ['a+0x1/0x2']), sample(3, 'R'), sample(5, 'D', true, ['b+0x1/0x2'])]);
  t.same(later, { state: 'D', wchan: null, site: ['b'], atMs: 5 }, 'the later sleep');
  const moved = lastWait([sample(1, 'S', true, ['a+0x1/0x2']), sample(3, 'S', true, ['b+0x1/0x2'])]);
  t.same(moved?.site, ['b'], 'a new site in the same sleep starts a new wait');
  t.equal(moved?.atMs, 3);
});

t.test('stackDue: a stack when a sleep begins, then every STACK_EVERY samples of that sleep', async (t) => {
  const site = ['xfs_break_dax_layouts'];
  t.ok(stackDue([]), 'first look');
  t.ok(stackDue([sample(1, 'R')]), 'running before: a sleep would begin now');
  t.ok(stackDue([sample(1, 'S', false, site)]), 'asleep outside the call does not count');
  const run: ThreadSample[] = [sample(1, 'S', true, site)];
  const due: boolean[] = [];
  for (let i = 0; i < 2 * STACK_EVERY; i++) {
    const d = stackDue(run);
    due.push(d);
    run.push(sample(2 + i, 'S', true, d ? site : null));
  }
  t.same(due.map((d, i) => (d ? i : -1)).filter((i) => i >= 0), [STACK_EVERY - 1, 2 * STACK_EVERY - 1], 'every STACK_EVERY-th sample after the one with a stack');
  t.ok(stackDue([sample(1, 'S', true, null), sample(2, 'S', true, null)]), 'no stack read yet in this sleep (unreadable): try again');
  t.ok(stackDue([sample(1, 'S', true, site), sample(2, 'R')]), 'a new sleep after running');
  t.same(lastWait(run)?.site, site, 'samples without a stack continue the wait they are in');
});

t.test('hungAfterSignal: what the op did once signalled after release + settle', async (t) => {
  t.equal(hungAfterSignal(false, null), 'uninterruptible', 'still in its call');
  t.equal(hungAfterSignal(true, 'EINTR'), 'interruptible');
  t.equal(hungAfterSignal(true, null), 'woken-by-signal', 'returned its result: nothing else had woken it');
  t.equal(hungAfterSignal(true, 'EBUSY'), 'woken-by-signal', 'failed otherwise');
});
