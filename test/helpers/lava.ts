// LAVA's own code, from Debian's lava-common and lava-dispatcher packages (scripts/provision
// installs them): the job and test-definition schemas, and the lava-test-shell helpers.
// Debian's python3 (/usr/bin/python3) carries the packages' modules, whatever python3 is
// first on PATH.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';

export const DEBIAN_PYTHON = '/usr/bin/python3';
export const LAVA_TEST_SHELL_DIR = '/usr/lib/python3/dist-packages/lava_dispatcher/lava_test_shell';

/** Why LAVA's packages are not usable here, or null. */
export function lavaMissing(): string | null {
  const r = spawnSync(DEBIAN_PYTHON, ['-c', 'import lava_common.schemas, yaml'], { encoding: 'utf8' });
  if (r.status !== 0) return `lava-common is not installed (scripts/provision installs it): ${(r.stderr || String(r.error)).trim().split('\n').pop()}`;
  if (!fs.existsSync(`${LAVA_TEST_SHELL_DIR}/lava-test-case`)) return 'lava-dispatcher is not installed (scripts/provision installs it)';
  return null;
}

const VALIDATE = String.raw`
import sys, yaml
from voluptuous import Invalid
kind, path = sys.argv[1], sys.argv[2]
data = yaml.safe_load(open(path))
try:
    if kind == "job":
        from lava_common.schemas import validate
        validate(data, strict=True)
    else:
        from lava_common.schemas.test.testdef import validate
        validate(data)
except Invalid as exc:
    print("invalid: %s" % exc)
    sys.exit(1)
print("valid")
`;

/** Validates a job ('job', strict) or a test definition ('testdef') file with lava_common.schemas. */
export function lavaValidate(kind: 'job' | 'testdef', file: string): { valid: boolean; message: string } {
  const r = spawnSync(DEBIAN_PYTHON, ['-c', VALIDATE, kind, file], { encoding: 'utf8' });
  if (r.status !== 0 && !r.stdout.startsWith('invalid:')) throw new Error(`lava_common could not read ${file}: ${r.stderr}`);
  return { valid: r.status === 0, message: r.stdout.trim() };
}
