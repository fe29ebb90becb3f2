// Pattern fill and view classification: pure functions, no kernel. Every record
// says which file and generation it belongs to; a view is classified per record, so
// a partially zeroed page, a torn record or one record of another file shows up.
import t from 'tap';
import {
  ORIGINAL,
  RECORD,
  Tag,
  WRITTEN,
  ViewExpectation,
  classifyCounts,
  describeView,
  fillPattern,
  makePattern,
  readRecord,
  readView,
} from '../../lib/cases/patterns';

const classifyView = (buf: Buffer | null, e: ViewExpectation, firstPage = 0) => readView(buf, e, firstPage).class;
const countView = (buf: Buffer, e: ViewExpectation, firstPage = 0) => describeView(buf, e, firstPage).counts;

const PAGE = 4096;
const PER_PAGE = PAGE / RECORD;
const mine: Tag = { fileId: 0x1234567, gen: ORIGINAL };
const mineWritten: Tag = { fileId: mine.fileId, gen: WRITTEN };
const other: Tag = { fileId: 0x7654321, gen: ORIGINAL };
const expect = { original: [mine], written: [mineWritten] };

t.test('a filled buffer reads back record by record with its tag and page index', async (t) => {
  const firstPage = 16;
  const buf = makePattern(4 * PAGE, mine, firstPage);
  t.equal(buf.length % RECORD, 0);
  for (let off = 0; off < buf.length; off += RECORD) {
    const r = readRecord(buf, off);
    if (r.kind !== 'tag') {
      t.fail(`record at ${off} is ${r.kind}`);
      continue;
    }
    if (r.tag.fileId !== mine.fileId || r.tag.gen !== ORIGINAL) t.fail(`record at ${off} has tag ${JSON.stringify(r.tag)}`);
    if (buf.readUInt32LE(off + 16) !== firstPage + Math.floor(off / PAGE)) t.fail(`record at ${off} has the wrong page index`);
  }
  t.equal(buf.subarray(0, 8).toString('latin1'), 'DAXPIN\x01\x00', 'records start with the magic');
  t.pass('every record carries the tag and its page');
});

t.test('the record layout: magic, id, generation, page, then the three inverted, little-endian', async (t) => {
  // The bytes on disk are read back by readRecord, by the C reference (test/reference/case.c)
  // and by the standalone reproducers: the layout is a contract, pinned here byte by byte.
  const rec = makePattern(RECORD, { fileId: 0x01020304, gen: WRITTEN }, 5);
  t.equal(
    rec.toString('hex'),
    Buffer.from('DAXPIN\x01\x00', 'latin1').toString('hex') + '04030201' + '01000000' + '05000000' + 'fbfcfdfe' + 'feffffff' + 'faffffff',
  );
});

t.test('a length that is not whole records: the records are written and the partial one is zero', async (t) => {
  const len = PAGE + 2 * RECORD + 5;
  for (const buf of [makePattern(len, mine, 9), fillPattern(Buffer.alloc(len, 0xee), mine, 9)]) {
    t.same(readRecord(buf, 0), { kind: 'tag', tag: mine });
    t.equal(buf.readUInt32LE(PAGE + RECORD + 16), 10, 'the second page has its own index');
    t.same(readRecord(buf, PAGE + RECORD), { kind: 'tag', tag: mine });
    t.same([...buf.subarray(PAGE + 2 * RECORD)], [0, 0, 0, 0, 0]);
  }
});

t.test('file ids above 2^31 survive (stored unsigned)', async (t) => {
  const big: Tag = { fileId: 0xfffffff0, gen: WRITTEN };
  const r = readRecord(makePattern(RECORD, big, 0), 0);
  t.same(r, { kind: 'tag', tag: { fileId: 0xfffffff0, gen: WRITTEN } });
});

t.test('readRecord tells zero, garbage and tagged records apart', async (t) => {
  t.same(readRecord(Buffer.alloc(RECORD), 0), { kind: 'zero' });
  t.same(readRecord(Buffer.alloc(RECORD, 0xff), 0), { kind: 'garbage' }, 'all ones is not a record');
  const rec = makePattern(RECORD, mine, 3);
  const flippedInverse = Buffer.from(rec);
  flippedInverse[20] ^= 1;
  t.same(readRecord(flippedInverse, 0), { kind: 'garbage' }, 'an inverted field that does not match');
  const badMagic = Buffer.from(rec);
  badMagic[0] = 0x41;
  t.same(readRecord(badMagic, 0), { kind: 'garbage' }, 'no magic');
  const tornTail = Buffer.from(rec);
  tornTail.fill(0, 16);
  t.same(readRecord(tornTail, 0), { kind: 'garbage' }, 'a record zeroed from its middle on');
  // A record torn between two records (one field from another file's or generation's
  // record, its inverse from this one) is garbage, not a tag.
  const otherRecords: [string, number, Buffer][] = [
    ['file id', 8, makePattern(RECORD, other, 3)],
    ['generation', 12, makePattern(RECORD, mineWritten, 3)],
    ['page index', 16, makePattern(RECORD, mine, 4)],
  ];
  for (const [field, at, from] of otherRecords) {
    const torn = Buffer.from(rec);
    from.copy(torn, at, at, at + 4);
    t.same(readRecord(torn, 0), { kind: 'garbage' }, `the ${field} of another record`);
  }
  const oneZeroByte = Buffer.from(rec);
  oneZeroByte[RECORD - 1] = 0;
  t.equal(readRecord(oneZeroByte, 0).kind, 'garbage');
});

t.test('countView counts each record by what it holds', async (t) => {
  const buf = Buffer.concat([
    makePattern(PAGE, mine, 0),
    fillPattern(Buffer.alloc(PAGE), mineWritten, 1),
    Buffer.alloc(PAGE),
    makePattern(2 * RECORD, other, 3),
    Buffer.alloc(RECORD, 0xee),
  ]);
  const c = countView(buf, expect);
  t.same(c, { original: PER_PAGE, written: PER_PAGE, peer: 0, shifted: 0, zero: PER_PAGE, foreign: 2, garbage: 1, foreignTags: [`${other.fileId}:0`] });
});

t.test('a trailing partial record is not counted', async (t) => {
  const buf = Buffer.concat([makePattern(2 * RECORD, mine, 0), Buffer.alloc(RECORD - 1, 0xee)]);
  t.same(countView(buf, expect), { original: 2, written: 0, peer: 0, shifted: 0, zero: 0, foreign: 0, garbage: 0, foreignTags: [] });
});

t.test('another generation of this file is foreign unless expected', async (t) => {
  const stale = makePattern(PAGE, { fileId: mine.fileId, gen: 7 }, 0);
  t.equal(classifyView(stale, expect), 'foreign');
  t.equal(classifyView(stale, { original: [mine, { fileId: mine.fileId, gen: 7 }], written: [] }), 'original');
});

t.test('any two different tags are told apart, whatever their ids', async (t) => {
  // File ids are random 31-bit numbers; ids 2^16 apart and the largest unsigned id included.
  const ids = [1, 0xffff, 0x10000, 0x10001, mine.fileId, mine.fileId + 0x10000, 0x7fffffff, 0xffffffff];
  const tags = ids.flatMap((fileId) => [ORIGINAL, WRITTEN].map((gen) => ({ fileId, gen })));
  for (const seen of tags) {
    const buf = makePattern(RECORD, seen, 0);
    for (const expected of tags) {
      const c = countView(buf, { original: [expected], written: [] });
      const same = seen.fileId === expected.fileId && seen.gen === expected.gen;
      if (c.foreign !== (same ? 0 : 1)) t.fail(`${JSON.stringify(seen)} read where ${JSON.stringify(expected)} is expected: foreign ${c.foreign}`);
    }
  }
  t.pass(`${tags.length} tags, each foreign to all the others`);
});

t.test('foreign dominates everything else, however little of it there is', async (t) => {
  const buf = makePattern(16 * PAGE, mine, 0);
  makePattern(RECORD, other, 0).copy(buf, 5 * PAGE + 7 * RECORD);
  const c = countView(buf, expect);
  t.equal(c.foreign, 1);
  t.equal(c.original, 16 * PER_PAGE - 1);
  t.equal(classifyCounts(c), 'foreign');
  const zerosAndForeign = Buffer.alloc(PAGE);
  makePattern(RECORD, other, 0).copy(zerosAndForeign, 0);
  t.equal(classifyView(zerosAndForeign, expect), 'foreign', 'not mixed');
  const base = { original: 0, written: 0, peer: 0, shifted: 0, zero: 0, foreign: 0, garbage: 0, foreignTags: [] };
  t.equal(classifyCounts({ ...base, original: 3, written: 3, zero: 3, garbage: 3, foreign: 1 }), 'foreign');
});

t.test('single classes, mixed and n/a', async (t) => {
  const base = { original: 0, written: 0, peer: 0, shifted: 0, zero: 0, foreign: 0, garbage: 0, foreignTags: [] };
  t.equal(classifyCounts({ ...base, original: 5 }), 'original');
  t.equal(classifyCounts({ ...base, written: 5 }), 'written');
  t.equal(classifyCounts({ ...base, zero: 5 }), 'zero');
  t.equal(classifyCounts({ ...base, garbage: 5 }), 'garbage');
  t.equal(classifyCounts({ ...base, original: 5, written: 1 }), 'mixed');
  t.equal(classifyCounts({ ...base, zero: 1, garbage: 1 }), 'mixed');
  t.equal(classifyCounts(base), 'n/a');
  t.equal(classifyView(null, expect), 'n/a');
  t.equal(classifyView(Buffer.alloc(0), expect), 'n/a');
  t.same(readView(null, expect, 0), { class: 'n/a', description: null }, 'a view not read has no description');
  t.same(readView(Buffer.alloc(0), expect, 0), { class: 'n/a', description: null }, 'nor has an empty one');
  t.equal(classifyView(Buffer.alloc(RECORD - 1), expect), 'n/a', 'shorter than one record');
  t.equal(classifyView(Buffer.alloc(PAGE), expect), 'zero');
  t.equal(classifyView(fillPattern(Buffer.alloc(PAGE), mineWritten, 0), expect), 'written');
});

t.test('partial-page zeroing is seen per record', async (t) => {
  // A truncate inside a large folio zeroes the tail of a page: the page is then
  // part original, part zero, and the classification must say 'mixed', not 'original'.
  for (const zeroFrom of [RECORD, PAGE / 2, PAGE - RECORD]) {
    const buf = makePattern(4 * PAGE, mine, 16);
    buf.fill(0, 2 * PAGE + zeroFrom, 3 * PAGE);
    const c = countView(buf, expect, 16);
    t.equal(c.zero, (PAGE - zeroFrom) / RECORD, `zeroed from ${zeroFrom}: zero records counted`);
    t.equal(c.original, 4 * PER_PAGE - c.zero);
    t.equal(classifyCounts(c), 'mixed');
  }
  const oneRecord = makePattern(PAGE, mine, 0);
  oneRecord.fill(0, 64, 96);
  t.same(countView(oneRecord, expect), { original: PER_PAGE - 1, written: 0, peer: 0, shifted: 0, zero: 1, foreign: 0, garbage: 0, foreignTags: [] }, 'one zeroed record');
  const unaligned = makePattern(PAGE, mine, 0);
  unaligned.fill(0, 100, PAGE);
  const c = countView(unaligned, expect);
  t.equal(c.garbage, 1, 'the record cut in its middle is garbage');
  t.equal(c.original, 3);
  t.equal(c.zero, PER_PAGE - 4);
  t.equal(classifyCounts(c), 'mixed');
});

t.test('positions: this file\'s bytes at another page index are shifted, not original', async (t) => {
  const firstPage = 16;
  const inPlace = makePattern(4 * PAGE, mine, firstPage);
  t.equal(classifyView(inPlace, expect, firstPage), 'original');
  t.equal(describeView(inPlace, expect, firstPage).pages, 'oooo');
  // A collapse of pages 16..19 moves pages 20..23 down: the same file, the wrong index.
  const collapsed = makePattern(4 * PAGE, mine, firstPage + 4);
  t.equal(classifyView(collapsed, expect, firstPage), 'shifted', 'a collapse that moved data');
  t.equal(describeView(collapsed, expect, firstPage).counts.shifted, 4 * PER_PAGE);
  t.equal(describeView(collapsed, expect, firstPage).pages, 'ssss');
  // Read from page 0 instead: the same bytes are shifted there too.
  t.equal(classifyView(inPlace, expect, 0), 'shifted');
});

t.test('page letters: one per page, m for a page that mixes, and the peer\'s bytes as p', async (t) => {
  const peer: Tag = { fileId: 0x5555, gen: ORIGINAL };
  const e = { ...expect, peer: [peer] };
  const buf = Buffer.concat([
    makePattern(PAGE, mine, 0),
    makePattern(PAGE, mineWritten, 1),
    makePattern(PAGE, peer, 2),
    Buffer.alloc(PAGE),
    makePattern(PAGE, other, 4),
    Buffer.alloc(PAGE, 0xee),
  ]);
  const mixed = makePattern(PAGE, mine, 6);
  mixed.fill(0, PAGE / 2);
  const d = describeView(Buffer.concat([buf, mixed]), e, 0);
  t.equal(d.pages, 'owpzfgm');
  t.equal(d.counts.peer, PER_PAGE);
  t.equal(classifyCounts(d.counts), 'foreign');
  t.equal(classifyView(makePattern(PAGE, peer, 2), e, 2), 'written', 'the op\'s peer bytes copied in are bytes written during the case');
});

t.test('a short read that ends inside a page has a letter for that page', async (t) => {
  const buf = Buffer.concat([makePattern(PAGE, mine, 0), Buffer.alloc(3 * RECORD)]);
  t.equal(describeView(buf, expect, 0).pages, 'oz');
  t.equal(describeView(buf.subarray(0, PAGE + RECORD - 1), expect, 0).pages, 'o', 'not for a page without a whole record');
});

t.test('foreign dominates shifted, shifted dominates the rest', async (t) => {
  const base = { original: 0, written: 0, peer: 0, shifted: 0, zero: 0, foreign: 0, garbage: 0, foreignTags: [] };
  t.equal(classifyCounts({ ...base, shifted: 1, foreign: 1 }), 'foreign');
  t.equal(classifyCounts({ ...base, shifted: 1, original: 9, zero: 3 }), 'shifted');
  t.equal(classifyCounts({ ...base, peer: 2, written: 2 }), 'written');
});

t.test('a pristine view is all original without a pass over its records', async (t) => {
  const canary = makePattern(4 * PAGE, other, 0);
  const r = readView(Buffer.from(canary), { original: [other], written: [] }, 0, canary);
  t.equal(r.class, 'original');
  t.equal(r.description?.pages, 'oooo');
  t.equal(r.description?.counts.original, 4 * PER_PAGE);
});

t.test('a pristine view reads as the record-by-record pass reads it', async (t) => {
  // The shortcut must not change an answer, at any length (a view may be a short read).
  for (const len of [RECORD - 1, RECORD, PAGE - 1, PAGE, PAGE + 5, PAGE + RECORD, 4 * PAGE]) {
    const view = makePattern(len, other, 0);
    const e = { original: [other], written: [] };
    t.same(readView(Buffer.from(view), e, 0, view), readView(view, e, 0), `${len} bytes`);
  }
});
