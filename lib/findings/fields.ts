// Reading a predicate's fields out of a case record, and the dimensions findings are
// grouped by. Records are read as plain JSON: a field a record does not carry is
// "missing", which is not the same as any value it could have had.

import { LAYOUT_OPS, MAPPINGS, PIN_METHODS } from '../cases/matrix';
import type { OpKind } from '../cases/matrix';
import type { CaseRecord } from '../outcome';
import { isSevereKernelLine } from '../verdict';
import type { Condition, Dimension } from './predicates';

export interface FieldValues {
  /** false when the path leads through a field the record does not have. */
  present: boolean;
  /** The values the path reaches (several through a `*`). */
  values: unknown[];
}

/** Values at a dotted path; `*` steps into every element of an array or value of an object. */
export function fieldValues(record: unknown, path: string): FieldValues {
  let frontier: unknown[] = [record];
  let present = true;
  for (const step of path.split('.')) {
    const next: unknown[] = [];
    for (const value of frontier) {
      // A measured null ends the path: "no wait" is a value, not a missing field.
      if (value === null) {
        next.push(null);
        continue;
      }
      if (typeof value !== 'object') {
        present = false;
        continue;
      }
      if (step === '*') {
        next.push(...(Array.isArray(value) ? value : Object.values(value as object)));
        continue;
      }
      const v = (value as Record<string, unknown>)[step];
      if (v === undefined) present = false;
      else next.push(v);
    }
    frontier = next;
  }
  return { present: present || frontier.length > 0, values: frontier };
}

export function isPresent(record: unknown, path: string): boolean {
  return fieldValues(record, path).present;
}

/** Whether one value satisfies a condition's test. */
export function valueHolds(cond: Condition, value: unknown): boolean {
  if ('eq' in cond) return value === cond.eq;
  if ('ne' in cond) return value !== cond.ne;
  if ('in' in cond) return (cond.in as unknown[]).includes(value);
  if ('matches' in cond) return typeof value === 'string' && new RegExp(cond.matches).test(value);
  if ('splat' in cond) return typeof value === 'string' && isSevereKernelLine({ level: 0, signature: value, text: value });
  return typeof value === 'number' && value > cond.gt;
}

/** A condition holds when any value its path reaches holds (`ne` on a missing field holds too: nothing equals). */
export function conditionHolds(record: unknown, cond: Condition): boolean {
  const { values } = fieldValues(record, cond.field);
  if (values.length === 0) return 'ne' in cond;
  return values.some((v) => valueHolds(cond, v));
}

/** The case's rows in the matrix tables, for `row.*` conditions (undefined for names the tables do not know). */
export function rowOf(rec: CaseRecord): { pin: unknown; mapping: unknown; op: unknown } {
  return {
    pin: PIN_METHODS.find((x) => x.name === rec.pinMethod),
    mapping: MAPPINGS.find((x) => x.name === rec.mapping),
    op: LAYOUT_OPS.find((x) => x.name === rec.layoutOp),
  };
}

/** Layout ops by what they do to the pinned file's blocks. */
const OP_FAMILY: Record<OpKind, string> = {
  truncate: 'truncate',
  'punch-hole': 'fallocate',
  'zero-range': 'fallocate',
  'collapse-range': 'fallocate',
  'insert-range': 'fallocate',
  ficlone: 'share',
  ficlonerange: 'share',
  dedupe: 'share',
  'copy-range': 'share',
  unlink: 'evict',
  'dax-flag': 'dax-flag',
  freeze: 'freeze',
  umount: 'evict',
};

/** The value of one grouping dimension for a record, from the matrix tables (names they do not know fall back to the name). */
export function dimensionOf(rec: CaseRecord, dim: Dimension): string {
  switch (dim) {
    case 'storage':
      return rec.daxVerified ? 'fsdax' : 'page-cache';
    case 'fsType':
      return rec.fsType;
    case 'config':
      return rec.config;
    case 'mapping':
      return rec.mapping;
    case 'mappingState': {
      const m = MAPPINGS.find((x) => x.name === rec.mapping);
      return (m ? m.mappedDuringOp : !rec.mapping.includes('unmapped')) ? 'mapped' : 'unmapped';
    }
    case 'pageSize':
      return MAPPINGS.find((x) => x.name === rec.mapping)?.pageSize ?? rec.mapping.split('-')[0];
    case 'pinMethod':
      return rec.pinMethod;
    case 'layoutOp':
      return rec.layoutOp;
    case 'opFamily': {
      const op = LAYOUT_OPS.find((x) => x.name === rec.layoutOp);
      return op ? OP_FAMILY[op.kind] : rec.layoutOp;
    }
  }
}
