// TAP version 14: one subtest per kernel × config, one test point per case, plus
// the config's own checks. Verdicts map as in JUnit:
//   violation, crashed, error    → not ok (with a YAML block of the details)
//   map-refused, unsupported, not-run → ok # SKIP
//   refused, waited, ok          → ok, the outcome class in the description

import { cellDetails } from './details';
import { buildGrid, suitesOf } from './grid';
import type { ParsedRun } from './runfile';
import { configChecks } from '../verdict';

/** A TAP description: '#' would start a directive and '\' escapes it. */
function description(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/#/g, '\\#').replace(/\n/g, ' ');
}

/** A YAML diagnostic block; JSON values are valid YAML and need no quoting rules of their own. */
function yamlBlock(values: object, indent: string): string[] {
  const lines = [`${indent}  ---`];
  for (const [k, v] of Object.entries(values)) {
    if (v !== undefined) lines.push(`${indent}  ${k}: ${JSON.stringify(v)}`);
  }
  lines.push(`${indent}  ...`);
  return lines;
}

export function renderTap(runs: ParsedRun[]): string {
  const grid = buildGrid(runs);
  const suites = suitesOf(grid);
  const out = ['TAP version 14', `1..${suites.length}`];
  suites.forEach((suite, i) => {
    const name = description(`${suite.column.label} ${suite.config}`);
    const body: string[] = [];
    let n = 0;
    let failed = false;
    const point = (ok: boolean, text: string, directive = '', yaml?: object): void => {
      n++;
      failed ||= !ok;
      body.push(`    ${ok ? 'ok' : 'not ok'} ${n} - ${description(text)}${directive ? ` # ${directive}` : ''}`);
      if (yaml) body.push(...yamlBlock(yaml, '    '));
    };
    for (const { row, cell } of suite.entries) {
      if (cell.verdict === 'not-run') point(true, row.caseId, 'SKIP planned but not run');
      else if (cell.verdict === 'map-refused') point(true, row.caseId, `SKIP ${description(cell.outcomeClass)}`);
      else if (cell.verdict === 'unsupported') point(true, row.caseId, `SKIP not applicable: ${description(cell.record?.reason ?? '')}`);
      else if (cell.verdict === 'violation' || cell.verdict === 'crashed' || cell.verdict === 'error') {
        point(false, `${row.caseId}: ${cell.outcomeClass}`, '', cellDetails(cell, suite.column.run, row));
      } else point(true, `${row.caseId}: ${cell.outcomeClass}`);
    }
    for (const check of suite.configRecord ? configChecks(suite.configRecord) : []) {
      const ok = check.verdict === 'ok';
      point(ok, `config ${check.name}: ${check.detail}`, '', ok ? undefined : { config: suite.config, check: check.name, detail: check.detail });
    }
    out.push(`# Subtest: ${name}`, `    1..${n}`, ...body, `${failed ? 'not ok' : 'ok'} ${i + 1} - ${name}`);
  });
  return `${out.join('\n')}\n`;
}
