// What the raw-fact comparison counts as agreement (test/reference/facts.ts).
import t from 'tap';
import { CaseRecord } from '../../lib/outcome';
import { ReferenceFacts } from '../reference/client';
import { factDifferences, fileShape, pagesClass, peerRoles } from '../reference/facts';

t.test('page strings as daxpin classes', async (t) => {
  t.equal(pagesClass('oooo', 'file'), 'original');
  t.equal(pagesClass('----', 'buffer'), 'n/a', 'nothing read');
  t.equal(pagesClass('oo--', 'file'), 'original', 'a short read is classified on what was read');
  t.equal(pagesClass('wwww', 'pipe'), 'written');
  t.equal(pagesClass('pppp', 'file'), 'written', "the peer's bytes in the pinned file were written by the op");
  t.equal(pagesClass('pppp', 'peer'), 'original', "and are the peer's own");
  t.equal(pagesClass('zzzz', 'file'), 'zero');
  t.equal(pagesClass('gggg', 'file'), 'garbage');
  t.equal(pagesClass('ozzz', 'file'), 'mixed');
  t.equal(pagesClass('ozfz', 'file'), 'foreign', 'another file anywhere makes the view foreign');
  t.equal(pagesClass('ossz', 'file'), null, 'a page of this file at another index is original or written by generation: no class');
  t.equal(pagesClass('omoo', 'file'), null);
  t.equal(pagesClass('', 'canary'), 'n/a');
  t.equal(pagesClass('oooo', 'peer'), 'foreign', "by default the pinned file's bytes in a second file are another file's");
  t.equal(pagesClass('wwww', 'peer', { original: 'original', written: 'original' }), 'original');
});

const rec = (over: Partial<CaseRecord> & Record<string, unknown>): CaseRecord =>
  ({
    status: 'done',
    pinMethod: 'none',
    layoutOp: 'punch-hole',
    map: { ok: true, errno: null },
    pin: { ok: true, errno: null },
    op: { ok: true, errno: null, started: true, returnedMs: 1, blockedUntilRelease: false, afterReleaseMs: null, hung: null, taskState: null, stack: null },
    release: { ok: true, errno: null, ms: null },
    views: { buffer: 'zero', pipe: 'n/a', file: 'zero', peer: 'n/a', canary: 'n/a' },
    sigbus: [],
    canary: { files: 0, bytes: 0 },
    ...over,
  }) as unknown as CaseRecord;

const facts = (over: Partial<ReferenceFacts> = {}): ReferenceFacts => ({
  caseId: 'none.punch-hole.pte-shared',
  daxVerified: false,
  pmd: false,
  map: { ok: true, errno: null },
  pin: { ok: true, errno: null },
  file: { before: null, after: null },
  op: { started: true, ok: true, errno: null, result: 0, dedupe: null, returnedMs: 2, blockedUntilRelease: false, hung: null },
  release: { ok: true, errno: null, result: null },
  views: { pages: { buffer: 'zzzz', pipe: '----', file: 'zzzz', peer: '----', canary: '' } },
  canary: { files: 0, bytes: 0 },
  sigbus: [],
  wallMs: 3,
  ...over,
});

t.test('agreement and each kind of disagreement', async (t) => {
  t.same(factDifferences(rec({}), facts()), [], 'the same facts, different times');
  t.match(factDifferences(rec({ views: { buffer: 'original', pipe: 'n/a', file: 'zero', peer: 'n/a', canary: 'n/a' } }), facts()), [/views.buffer/]);
  t.match(factDifferences(rec({ pin: { ok: false, errno: 'EFAULT' } }), facts()), [/^pin/]);
  t.match(factDifferences(rec({ op: { ...rec({}).op, ok: false, errno: 'EOPNOTSUPP' } }), facts()), [/^op:/]);
  t.match(factDifferences(rec({ op: { ...rec({}).op, blockedUntilRelease: true } }), facts()), [/blockedUntilRelease/]);
  t.match(factDifferences(rec({ release: { ok: false, errno: 'ENXIO', ms: 1 } }), facts()), [/^release/]);
  t.match(factDifferences(rec({ sigbus: ['buffer'] }), facts()), [/sigbus/]);
  t.match(factDifferences(rec({ canary: { files: 4, bytes: 1 << 20 } }), facts()), [/canary.files/]);
  t.match(factDifferences(rec({ status: 'error', error: 'x' }), facts()), [/did not finish/]);
  t.match(factDifferences(rec({ map: { ok: false, errno: 'EOPNOTSUPP' } }), facts()), [/^map/]);
});

t.test('observed fields are compared once records carry them', async (t) => {
  const withFile = (size: number) => ({ before: null, after: { size, blocks: 8, extents: [{ logical: 0, physical: 4096, length: 4096, flags: 1 }] } });
  const ref = facts({ file: withFile(4096) });
  t.same(factDifferences(rec({ file: { before: null, after: { size: 4096, blocks: 8, extents: [{ logical: 0, physical: 999, length: 4096, flags: 1 }] } } }), ref), [], 'block addresses differ by nature');
  t.match(factDifferences(rec({ file: withFile(0) }), ref), [/file.after/]);
  t.match(factDifferences(rec({ op: { ...rec({}).op, result: 5 } as CaseRecord['op'] }), facts()), [/op.result/]);
  t.match(factDifferences(rec({ views: { ...rec({}).views, pages: { file: 'oooo' } } as CaseRecord['views'] }), facts()), [/views.pages.file/]);
  t.same(fileShape(null), null);
  t.same(fileShape({ size: 1, blocks: 0, extents: null }), { size: 1, blocks: 0, extents: null });
});

t.test("peer roles follow the timeline's rule", async (t) => {
  t.same(peerRoles(rec({ layoutOp: 'ficlone-src' }), false), { original: 'original', written: 'foreign' });
  t.same(peerRoles(rec({ layoutOp: 'ficlone-src' }), true), { original: 'original', written: 'original' });
  t.same(peerRoles(rec({ layoutOp: 'ficlone-src', pinMethod: 'vmsplice' }), false), { original: 'original', written: 'original' });
  t.same(peerRoles(rec({ layoutOp: 'dedupe' }), false), { original: 'original', written: 'foreign' });
  t.same(peerRoles(rec({ layoutOp: 'copy-range' }), false), { original: 'foreign', written: 'foreign' });
});
