// Data patterns: every byte daxpin writes says which file and which generation it
// belongs to, so a view read back after a case can be classified without knowing
// what the kernel "should" have done. Pure functions, no I/O.
import { ViewClass } from '../outcome';

// A page is 128 records of 32 bytes: magic, file id, generation, page index,
// then the same three values inverted (so a record is never mistaken for zeroes
// or for a torn write). Classifying per record catches partial-page zeroing.
export const RECORD = 32;
const MAGIC = Buffer.from('DAXPIN\x01\x00', 'latin1');

export interface Tag {
  fileId: number;
  gen: number;
}

/** Generation 0: the bytes a file is created with; 1: bytes written during the case. */
export const ORIGINAL = 0;
export const WRITTEN = 1;

export function tagKey(t: Tag): string {
  return `${t.fileId >>> 0}:${t.gen}`;
}

// The magic as two little-endian words: records are read and written a word at a
// time through a DataView (little-endian whatever the host, any alignment).
const MAGIC0 = MAGIC.readUInt32LE(0);
const MAGIC1 = MAGIC.readUInt32LE(4);

function dataView(buf: Buffer): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

/**
 * Fills buf with tag's records, page index counted from `firstPage`: every whole record
 * is written and a trailing partial record is zeroed, so every byte of buf is set.
 */
export function fillPattern(buf: Buffer, tag: Tag, firstPage: number, pageSize = 4096): Buffer {
  const fileId = tag.fileId >>> 0;
  const gen = tag.gen >>> 0;
  // The records of a page are all alike: write one, let Buffer.fill repeat it over
  // the page (a memcpy).
  const record = Buffer.alloc(RECORD);
  const r = dataView(record);
  r.setUint32(0, MAGIC0, true);
  r.setUint32(4, MAGIC1, true);
  r.setUint32(8, fileId, true);
  r.setUint32(12, gen, true);
  r.setUint32(20, ~fileId >>> 0, true);
  r.setUint32(24, ~gen >>> 0, true);
  const whole = buf.length - (buf.length % RECORD);
  for (let off = 0, p = 0; off < whole; off += pageSize, p++) {
    const page = (firstPage + p) >>> 0;
    r.setUint32(16, page, true);
    r.setUint32(28, ~page >>> 0, true);
    buf.fill(record, off, Math.min(off + pageSize, whole));
  }
  buf.fill(0, whole);
  return buf;
}

export function makePattern(length: number, tag: Tag, firstPage: number): Buffer {
  return fillPattern(Buffer.allocUnsafe(length), tag, firstPage);
}

type RecordKind = { kind: 'zero' } | { kind: 'tag'; tag: Tag } | { kind: 'garbage' };

const ZERO = 0;
const GARBAGE = 1;
const TAGGED = 2;
/** The fields of the last tagged record decodeRecord read (reused: the per-record loop allocates nothing). */
interface TaggedRecord extends Tag {
  page: number;
}

/** One record at `off`: ZERO (all 32 bytes zero), GARBAGE (not a whole daxpin record) or TAGGED, its fields in `out`. */
function decodeRecord(view: DataView, off: number, out: TaggedRecord): typeof ZERO | typeof GARBAGE | typeof TAGGED {
  const m0 = view.getUint32(off, true);
  const m1 = view.getUint32(off + 4, true);
  const fileId = view.getUint32(off + 8, true);
  const gen = view.getUint32(off + 12, true);
  const page = view.getUint32(off + 16, true);
  const notFileId = view.getUint32(off + 20, true);
  const notGen = view.getUint32(off + 24, true);
  const notPage = view.getUint32(off + 28, true);
  if ((m0 | m1 | fileId | gen | page | notFileId | notGen | notPage) === 0) return ZERO;
  if (m0 !== MAGIC0 || m1 !== MAGIC1) return GARBAGE;
  if (notFileId !== (~fileId >>> 0) || notGen !== (~gen >>> 0) || notPage !== (~page >>> 0)) return GARBAGE;
  out.fileId = fileId;
  out.gen = gen;
  out.page = page;
  return TAGGED;
}

export function readRecord(buf: Buffer, off: number): RecordKind {
  const out: TaggedRecord = { fileId: 0, gen: 0, page: 0 };
  const k = decodeRecord(dataView(buf), off, out);
  if (k === ZERO) return { kind: 'zero' };
  if (k === GARBAGE) return { kind: 'garbage' };
  return { kind: 'tag', tag: { fileId: out.fileId, gen: out.gen } };
}

/**
 * What a view may legitimately hold, by tag: this file's own bytes (`original`), bytes
 * written during the case (`written`), and the op's second file's bytes where the op
 * copies or clones them in (`peer`). Any other daxpin-tagged bytes are another file's.
 */
export interface ViewExpectation {
  original: Tag[];
  written: Tag[];
  peer?: Tag[];
}

/** Per-record counts of a view. `shifted`: legitimate bytes at another page index than their own. */
export interface ViewCounts {
  original: number;
  written: number;
  peer: number;
  shifted: number;
  zero: number;
  foreign: number;
  garbage: number;
  /** The tags seen that were none of the expected ones, as tagKey strings. */
  foreignTags: string[];
}

/**
 * One letter per page of a view, in order:
 *   o this file's original bytes at their own page index, w bytes written during the case
 *   at their own index, p the peer file's bytes at their own index, s legitimate bytes at
 *   another index (moved), z zeroes, f another file's bytes, g bytes daxpin never wrote,
 *   m a page that mixes several of these, - a page the view does not reach (short read).
 */
export type PageLetter = 'o' | 'w' | 'p' | 's' | 'z' | 'f' | 'g' | 'm' | '-';

export interface ViewDescription {
  counts: ViewCounts;
  pages: string;
}

const ROLE_LETTER = ['o', 'w', 'p'] as const;

/**
 * Reads every 32-byte record of `buf`, which was read from the file at page `firstPage`:
 * who wrote it, and whether it sits at the page index it names. Pure.
 */
export function describeView(buf: Buffer, expect: ViewExpectation, firstPage: number, pageSize = 4096): ViewDescription {
  // Tags as numbers (fileId * 2^16 + gen) so the per-record loop allocates nothing.
  const key = (fileId: number, gen: number) => fileId * 65536 + (gen & 0xffff);
  const role = new Map<number, number>();
  (expect.peer ?? []).forEach((t) => role.set(key(t.fileId >>> 0, t.gen >>> 0), 2));
  expect.written.forEach((t) => role.set(key(t.fileId >>> 0, t.gen >>> 0), 1));
  expect.original.forEach((t) => role.set(key(t.fileId >>> 0, t.gen >>> 0), 0));
  const counts: Omit<ViewCounts, 'foreignTags'> = { original: 0, written: 0, peer: 0, shifted: 0, zero: 0, foreign: 0, garbage: 0 };
  const foreign = new Map<number, string>();
  const recordsPerPage = pageSize / RECORD;
  const pages: string[] = [];
  let pageLetter: PageLetter | null = null;
  const usable = buf.length - (buf.length % RECORD);
  const view = dataView(buf);
  const r: TaggedRecord = { fileId: 0, gen: 0, page: 0 };
  for (let off = 0, i = 0; off < usable; off += RECORD, i++) {
    let letter: PageLetter;
    const kind = decodeRecord(view, off, r);
    if (kind === ZERO) {
      counts.zero++;
      letter = 'z';
    } else if (kind === GARBAGE) {
      counts.garbage++;
      letter = 'g';
    } else {
      const k = key(r.fileId, r.gen);
      const ro = role.get(k);
      if (ro === undefined) {
        counts.foreign++;
        if (!foreign.has(k)) foreign.set(k, tagKey(r));
        letter = 'f';
      } else if (r.page !== ((firstPage + Math.floor(i / recordsPerPage)) >>> 0)) {
        counts.shifted++;
        letter = 's';
      } else {
        letter = ROLE_LETTER[ro];
        if (ro === 0) counts.original++;
        else if (ro === 1) counts.written++;
        else counts.peer++;
      }
    }
    pageLetter = pageLetter === null || pageLetter === letter ? letter : 'm';
    if ((i + 1) % recordsPerPage === 0) {
      pages.push(pageLetter);
      pageLetter = null;
    }
  }
  if (pageLetter !== null) pages.push(pageLetter);
  return { counts: { ...counts, foreignTags: [...foreign.values()] }, pages: pages.join('') };
}

/**
 * One class for a view. Another file's bytes anywhere make the view 'foreign': that is
 * the invariant, and 'mixed' must never hide it. This file's bytes at the wrong place
 * come next ('shifted': a collapse that moved nothing reads 'original'). The op's peer
 * bytes copied in count as 'written' (bytes written during the case).
 */
export function classifyCounts(c: ViewCounts): ViewClass {
  if (c.foreign > 0) return 'foreign';
  if (c.shifted > 0) return 'shifted';
  const written = c.written + c.peer;
  const present = (['original', 'written', 'zero', 'garbage'] as const).filter((k) => (k === 'written' ? written : c[k]) > 0);
  if (present.length === 0) return 'n/a';
  if (present.length > 1) return 'mixed';
  return present[0];
}

export interface ViewReading {
  class: ViewClass;
  /** Null when the view was not read or is empty. */
  description: ViewDescription | null;
}

/**
 * Classifies a view read from page `firstPage`. `pristine`, when given, is the view's
 * original pattern (a canary as written): a view equal to it is all 'o' without a
 * record-by-record pass (one memcmp).
 */
export function readView(buf: Buffer | null, expect: ViewExpectation, firstPage: number, pristine?: Buffer): ViewReading {
  if (buf === null || buf.length === 0) return { class: 'n/a', description: null };
  if (pristine && buf.length >= RECORD && buf.equals(pristine)) {
    const records = Math.floor(buf.length / RECORD);
    const counts: ViewCounts = { original: records, written: 0, peer: 0, shifted: 0, zero: 0, foreign: 0, garbage: 0, foreignTags: [] };
    // A page letter for every page that holds a whole record, as describeView gives.
    return { class: 'original', description: { counts, pages: 'o'.repeat(Math.ceil(records / (4096 / RECORD))) } };
  }
  const description = describeView(buf, expect, firstPage);
  return { class: classifyCounts(description.counts), description };
}
