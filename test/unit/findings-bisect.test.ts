// The bisection search as a pure function of its state, the judge of one step, and
// the Debian changelog reading that names the upstream versions between two packages.

import t from 'tap';
import { changesBetween, judgeStep, nextStep, parseDebianChangelog } from '../../lib/findings/bisect';
import type { BisectState, StepVerdict } from '../../lib/findings/bisect';

const VERSIONS = Array.from({ length: 29 }, (_, i) => `v${i}`);

/** Runs the search against a hidden first-bad index, some versions not booting; returns the answer and the steps. */
function simulate(firstBad: number, unbootable: Set<number> = new Set()): { answer: ReturnType<typeof nextStep>; tested: string[] } {
  const state: BisectState = { versions: VERSIONS, verdicts: {} };
  const tested: string[] = [];
  for (;;) {
    const step = nextStep(state);
    if (step.kind === 'done') return { answer: step, tested };
    const i = VERSIONS.indexOf(step.version);
    tested.push(step.version);
    const verdict: StepVerdict = unbootable.has(i) ? 'skip' : i >= firstBad ? 'bad' : 'good';
    state.verdicts[step.version] = verdict;
  }
}

t.test('finds the adjacent pair for every change point in at most ceil(log2 n) steps', async (t) => {
  for (let firstBad = 1; firstBad < VERSIONS.length; firstBad++) {
    const { answer, tested } = simulate(firstBad);
    t.same(answer, { kind: 'done', good: VERSIONS[firstBad - 1], bad: VERSIONS[firstBad], skipped: [] }, `change at ${firstBad}`);
    t.ok(tested.length <= Math.ceil(Math.log2(VERSIONS.length - 1)), `${tested.length} steps`);
  }
});

t.test('a version that does not boot is skipped, as git bisect skip', async (t) => {
  const { answer, tested } = simulate(10, new Set([9]));
  t.same(answer, { kind: 'done', good: 'v8', bad: 'v10', skipped: ['v9'] });
  t.ok(tested.includes('v9'));
  const around = simulate(10, new Set([14]));
  t.same(around.answer, { kind: 'done', good: 'v9', bad: 'v10', skipped: [] }, 'a skip away from the change does not blur it');
});

t.test('resuming: the same state gives the same next step', async (t) => {
  const state: BisectState = { versions: VERSIONS, verdicts: { v14: 'bad', v7: 'good' } };
  const a = nextStep(state);
  const b = nextStep(JSON.parse(JSON.stringify(state)) as BisectState);
  t.same(a, b);
  t.match(a, { kind: 'test', version: 'v10', remaining: 6 });
});

t.test('a step is good when its outcome equals the good end, bad otherwise, skip when nothing ran', async (t) => {
  const good = { 'ext4-dax/x': ['ok canary=foreign'] };
  t.equal(judgeStep(good, { 'ext4-dax/x': ['ok canary=foreign'] }), 'good');
  t.equal(judgeStep(good, { 'ext4-dax/x': ['waited buf=written'] }), 'bad');
  t.equal(judgeStep(good, { 'ext4-dax/x': ['ok canary=foreign', 'waited buf=written'] }), 'bad', 'a flaky mix is not the good outcome');
  t.equal(judgeStep(good, null), 'skip');
  t.equal(judgeStep(good, {}), 'skip');
});

const CHANGELOG = `linux-signed-amd64 (6.12.57+1) trixie; urgency=medium

  * Sign kernel from linux 6.12.57-1
  * New upstream stable update:
    https://www.kernel.org/pub/linux/kernel/v6.x/ChangeLog-6.12.55
    https://www.kernel.org/pub/linux/kernel/v6.x/ChangeLog-6.12.56
    https://www.kernel.org/pub/linux/kernel/v6.x/ChangeLog-6.12.57

 -- Debian Kernel Team <debian-kernel@lists.debian.org>  Sat, 01 Nov 2025 10:00:00 +0000

linux (6.12.54-1) trixie; urgency=medium

  * New upstream stable update:
    https://www.kernel.org/pub/linux/kernel/v6.x/ChangeLog-6.12.54

 -- Someone <x@example.org>  Sat, 18 Oct 2025 10:00:00 +0000

linux (6.12.1-1~exp1) experimental; urgency=medium

  * New upstream release: https://kernelnewbies.org/Linux_6.12

 -- Someone <x@example.org>  Sat, 18 Oct 2024 10:00:00 +0000
`;

t.test('the Debian changelog names the upstream versions between two packages', async (t) => {
  const entries = parseDebianChangelog(CHANGELOG);
  t.same(entries.map((e) => e.version), ['6.12.57+1', '6.12.54-1', '6.12.1-1~exp1']);
  t.same(entries[0].upstream, ['6.12.55', '6.12.56', '6.12.57']);
  t.same(entries[1].upstream, ['6.12.54'], 'a source entry names its own upstream version');
  t.same(entries[2].upstream, ['6.12.1'], "a release's own version");
  t.same(changesBetween(entries, '6.12.54-1').flatMap((e) => e.upstream), ['6.12.55', '6.12.56', '6.12.57']);
  t.same(changesBetween(entries, '6.1.176-1').length, 3, 'another branch: everything newer than the good version');
});
