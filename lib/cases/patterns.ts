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

export function fillPattern(buf: Buffer, tag: Tag, firstPage: number, pageSize = 4096): Buffer {
  for (let off = 0; off < buf.length; off += RECORD) {
    const page = firstPage + Math.floor(off / pageSize);
    MAGIC.copy(buf, off);
    buf.writeUInt32LE(tag.fileId >>> 0, off + 8);
    buf.writeUInt32LE(tag.gen >>> 0, off + 12);
    buf.writeUInt32LE(page >>> 0, off + 16);
    buf.writeUInt32LE(~tag.fileId >>> 0, off + 20);
    buf.writeUInt32LE(~tag.gen >>> 0, off + 24);
    buf.writeUInt32LE(~page >>> 0, off + 28);
  }
  return buf;
}

export function makePattern(length: number, tag: Tag, firstPage: number): Buffer {
  return fillPattern(Buffer.alloc(length), tag, firstPage);
}

type RecordKind = { kind: 'zero' } | { kind: 'tag'; tag: Tag } | { kind: 'garbage' };

export function readRecord(buf: Buffer, off: number): RecordKind {
  let zero = true;
  for (let i = 0; i < RECORD; i++) {
    if (buf[off + i] !== 0) {
      zero = false;
      break;
    }
  }
  if (zero) return { kind: 'zero' };
  if (buf.compare(MAGIC, 0, MAGIC.length, off, off + MAGIC.length) !== 0) return { kind: 'garbage' };
  const fileId = buf.readUInt32LE(off + 8);
  const gen = buf.readUInt32LE(off + 12);
  const page = buf.readUInt32LE(off + 16);
  if (buf.readUInt32LE(off + 20) !== (~fileId >>> 0) || buf.readUInt32LE(off + 24) !== (~gen >>> 0) || buf.readUInt32LE(off + 28) !== (~page >>> 0)) {
    return { kind: 'garbage' };
  }
  return { kind: 'tag', tag: { fileId, gen } };
}

/** What a view is allowed to hold, by tag. Anything else tagged is another file's. */
export interface ViewExpectation {
  original: Tag[];
  written: Tag[];
}

export interface ViewCounts {
  original: number;
  written: number;
  zero: number;
  foreign: number;
  garbage: number;
  /** The tags seen that were neither original nor written. */
  foreignTags: string[];
}

export function countView(buf: Buffer, expect: ViewExpectation): ViewCounts {
  const original = new Set(expect.original.map(tagKey));
  const written = new Set(expect.written.map(tagKey));
  const counts: ViewCounts = { original: 0, written: 0, zero: 0, foreign: 0, garbage: 0, foreignTags: [] };
  const foreign = new Set<string>();
  for (let off = 0; off + RECORD <= buf.length; off += RECORD) {
    const r = readRecord(buf, off);
    if (r.kind === 'zero') counts.zero++;
    else if (r.kind === 'garbage') counts.garbage++;
    else {
      const key = tagKey(r.tag);
      if (original.has(key)) counts.original++;
      else if (written.has(key)) counts.written++;
      else {
        counts.foreign++;
        foreign.add(key);
      }
    }
  }
  counts.foreignTags = [...foreign];
  return counts;
}

/**
 * One class for a view. Another file's bytes anywhere make the view 'foreign':
 * that is the invariant, and 'mixed' must never hide it.
 */
export function classifyCounts(c: ViewCounts): ViewClass {
  if (c.foreign > 0) return 'foreign';
  const present = (['original', 'written', 'zero', 'garbage'] as const).filter((k) => c[k] > 0);
  if (present.length === 0) return 'n/a';
  if (present.length > 1) return 'mixed';
  return present[0];
}

export function classifyView(buf: Buffer | null, expect: ViewExpectation): ViewClass {
  if (buf === null || buf.length === 0) return 'n/a';
  return classifyCounts(countView(buf, expect));
}
