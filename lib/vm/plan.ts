// The cases a guest will run, planned on the host the way the guest plans them.
import { Case, CONFIGS, Config, MatrixName, findConfig } from '../cases/matrix';
import { plan } from '../engine/run';
import { DaxpinError } from '../errors';
import { planKey } from '../outcome';

export interface PlannedCase {
  key: string;
  case: Case;
}

/** The cases the guest will plan for these options, in its order (the same `plan` the guest calls). */
export function planCases(configs: Config[], matrix: MatrixName, globs?: string[]): PlannedCase[] {
  return plan(configs.map((config) => ({ config })), matrix, globs).flatMap((p) => p.cases.map((c) => ({ key: planKey(c.config.name, c.id), case: c })));
}

/** Config names → configs; none given: every config. */
export function resolveConfigs(names: string[] | undefined): Config[] {
  if (!names || names.length === 0) return CONFIGS;
  const out: Config[] = [];
  for (const name of names) {
    const c = findConfig(name);
    if (!c) throw new DaxpinError('EUSAGE', `unknown config "${name}"; known: ${CONFIGS.map((x) => x.name).join(', ')}`);
    if (!out.includes(c)) out.push(c);
  }
  return out;
}
