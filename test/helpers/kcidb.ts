// KernelCI's own KCIDB schema (vendored from kcidb-io, see lib/report/kcidb-io/README.md),
// compiled the way kcidb-io validates: JSON Schema Draft-07 with format checking.

import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv from 'ajv';
import type { ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';

export const KCIDB_SCHEMA_PATH = path.resolve(__dirname, '../../../lib/report/kcidb-io/v5.3.schema.json');

let compiled: ValidateFunction | undefined;

export function kcidbValidator(): ValidateFunction {
  if (!compiled) {
    const ajv = new Ajv({ allErrors: true, strict: true });
    addFormats(ajv);
    compiled = ajv.compile(JSON.parse(fs.readFileSync(KCIDB_SCHEMA_PATH, 'utf8')));
  }
  return compiled;
}

/** The first few schema errors, for a test message. */
export function kcidbErrors(validate: ValidateFunction): string {
  return JSON.stringify(validate.errors?.slice(0, 5) ?? []);
}
