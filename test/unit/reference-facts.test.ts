// What the raw-fact comparison counts as agreement (test/reference/facts.ts).
import t from 'tap';
import { CaseRecord } from '../../lib/outcome';
import { ReferenceFacts } from '../reference/client';
import { factDifferences, fileShape, pagesClass } from '../reference/facts';
import { caseRecord } from '../fixtures/runs';

t.test('page letters as daxpin classes', async (t) => {
  t.equal(pagesClass('oooo'), 'original');
  t.equal(pagesClass('----'), 'n/a', 'nothing read');
  t.equal(pagesClass('oo--'), 'original', 'a short read is classified on what was read');
  t.equal(pagesClass('wwww'), 'written');
  t.equal(pagesClass('pppp'), 'written', "the peer's bytes copied in were written by the op");
  t.equal(pagesClass('zzzz'), 'zero');
  t.equal(pagesClass('gggg'), 'garbage');
  t.equal(pagesClass('ozzz'), 'mixed');
  t.equal(pagesClass('ossz'), 'shifted', 'moved bytes come before mixed');
  t.equal(pagesClass('ozfs'), 'foreign', 'another file anywhere makes the view foreign');
  t.equal(pagesClass('omoo'), null, 'a mixed page says too little');
  t.equal(pagesClass('fmoo'), 'foreign', 'unless another file is seen anyway');
  t.equal(pagesClass(''), 'n/a');
});

const rec = (): CaseRecord =>
  caseRecord('xfs', 'none.punch-hole.pte-shared', {
    pin: { ok: true, errno: null, held: false, evidence: null },
    op: { result: 0, dedupe: null, asleepAtRelease: false, hung: null },
    release: { ok: true, errno: null, ms: null, result: null },
    file: { before: { size: 262144, blocks: 512, extents: [{ logical: 65536, physical: 0, length: 16384, flags: 7 }] }, after: { size: 262144, blocks: 480, extents: [] }, pathAfter: { ok: true, errno: null } },
    views: { buffer: 'zero', pipe: 'n/a', file: 'zero', peer: 'n/a', canary: 'n/a' },
    viewDetail: { buffer: { pages: 'zzzz', counts: {} as never, foreignFrom: [] }, file: { pages: 'zzzz', counts: {} as never, foreignFrom: [] } },
    sigbus: [],
    canary: { files: 0, bytes: 0, reusedPinnedBytes: null },
  });

const facts = (): ReferenceFacts => ({
  caseId: 'none.punch-hole.pte-shared',
  daxVerified: false,
  pmd: false,
  map: { ok: true, errno: null },
  pin: { ok: true, errno: null, held: false },
  file: { before: { size: 262144, blocks: 512, extents: [{ logical: 65536, physical: 0, length: 16384, flags: 7 }] }, after: { size: 262144, blocks: 480, extents: [] }, pathAfter: { ok: true, errno: null } },
  op: { started: true, ok: true, errno: null, result: 0, dedupe: null, returnedMs: 2, seenAsleep: false, asleepAtRelease: false, blockedUntilRelease: false, hung: null },
  release: { ok: true, errno: null, result: null },
  views: { pages: { buffer: 'zzzz', pipe: '----', file: 'zzzz', peer: '----', canary: '' } },
  canary: { files: 0, bytes: 0 },
  sigbus: [],
  wallMs: 3,
});

t.test('agreement, and each kind of disagreement', async (t) => {
  t.same(factDifferences(rec(), facts()), [], 'the same facts, different times and ids');
  const differ = (patch: (r: CaseRecord, f: ReferenceFacts) => void, what: RegExp) => {
    const r = rec();
    const f = facts();
    patch(r, f);
    t.match(factDifferences(r, f), [what], what.source);
  };
  differ((r) => (r.pin = { ok: false, errno: 'EFAULT', held: false, evidence: null }), /^pin/);
  differ((r) => (r.pin.held = true), /^pin/);
  differ((r) => (r.op.errno = 'EOPNOTSUPP'), /^op:/);
  differ((r) => (r.op.result = 16384), /^op:/);
  differ((r) => (r.op.dedupe = { status: 'same', bytesDeduped: 0 }), /^op:/);
  differ((r) => (r.op.blockedUntilRelease = true), /blockedUntilRelease/);
  differ((r) => (r.release.result = 16384), /^release/);
  differ((r) => (r.file.after = { size: 65536, blocks: 128, extents: [] }), /file.after/);
  differ((r) => (r.file.before!.extents![0].flags = 1), /file.before/);
  differ((r) => (r.file.pathAfter = { ok: false, errno: 'ENOENT' }), /file.pathAfter/);
  differ((r) => (r.sigbus = ['buffer']), /sigbus/);
  differ((r) => (r.canary.files = 4), /canary.files/);
  differ((r) => (r.status = 'error'), /did not finish/);
  differ((_r, f) => (f.views!.pages.pipe = 'wwww'), /views.pages.pipe/);
  t.match(factDifferences({ ...rec(), views: { ...rec().views, file: 'original' }, viewDetail: { ...rec().viewDetail, file: { pages: 'oooo', counts: {} as never, foreignFrom: [] } } }, facts()), [
    /views.pages.file/,
    /views.file/,
  ]);
  const slept = rec();
  slept.op.asleepAtRelease = true;
  slept.op.blockedUntilRelease = true;
  slept.canary.files = 4;
  t.same(factDifferences(slept, facts()), [], 'an op that slept at the release: whether it waited and the canaries are timing, not compared');
  const sleptBefore = rec();
  sleptBefore.op.wait = { state: 'D', wchan: 'synchronize_rcu_normal', site: ['synchronize_rcu_normal', 'freeze_super'], atMs: 24.7 };
  sleptBefore.canary.files = 0;
  const refCanaries = facts();
  refCanaries.canary = { files: 1, bytes: 262144 };
  refCanaries.views!.pages.canary = 'o'.repeat(64);
  t.same(factDifferences(sleptBefore, refCanaries), [], "daxpin saw its op asleep while holding, not at the release: the canaries are timing");
  const refSlept = facts();
  refSlept.op!.seenAsleep = true;
  refSlept.canary = { files: 1, bytes: 262144 };
  refSlept.views!.pages.canary = 'o'.repeat(64);
  t.same(factDifferences(rec(), refSlept), [], 'the reference saw its op asleep while holding: the same');
  const notSlept = facts();
  notSlept.canary = { files: 1, bytes: 262144 };
  t.match(factDifferences(rec(), notSlept), [/canary.files/], 'an op seen asleep on neither side: the canaries are compared');
  const refused = facts();
  refused.map = { ok: false, errno: 'EOPNOTSUPP' };
  t.match(factDifferences(rec(), refused), [/^map/], 'a refused map ends the comparison');
});

t.test('a case that cannot run here on one side only disagrees; on both, nothing else is compared', async (t) => {
  const unsupported = { ...rec(), status: 'unsupported' as const, reason: 'freeze needs a filesystem daxpin mounted itself' };
  const refUnsupported: ReferenceFacts = { caseId: 'none.freeze.pte-shared', unsupported: 'freeze needs the mount', daxVerified: false, pmd: null, map: { ok: false, errno: null }, wallMs: 0 };
  t.same(factDifferences(unsupported, refUnsupported), [], 'both: agreed');
  t.match(factDifferences(unsupported, facts()), [/^unsupported: daxpin true, reference false/]);
  t.match(factDifferences(rec(), refUnsupported), [/^unsupported: daxpin false, reference true/]);
});

t.test('file shapes leave block addresses out', async (t) => {
  const r = rec();
  r.file.before!.extents![0].physical = 999;
  t.same(factDifferences(r, facts()), []);
  t.same(fileShape(null), null);
  t.same(fileShape({ size: 1, blocks: 0, extents: null }), { size: 1, blocks: 0, extents: null });
});
