// JUnit XML: one <testsuite> per kernel × config, one <testcase> per case, plus
// the config's own checks (fsck, setup). How verdicts map:
//   violation (any invariant)      → <failure type="KIND"> (the first kind; all are listed)
//   crashed                        → <error type="crashed">: the kernel went down and the
//                                    case never finished (it is also listed as a violation)
//   error (setup failed, abandoned → <error>
//     without a hang)
//   map-refused, unsupported, not-run → <skipped>: the mapping (or pin, op) does not exist here,
//                                    or the run ended before the case
//   refused, waited, ok            → passed: recorded behaviour, invariants held; the
//                                    outcome class is in <system-out>
// Behaviour that differs between kernels is not a failure here; `daxpin compare`
// reports it.

import { cellDetails, detailsText } from './details';
import { buildGrid, suitesOf } from './grid';
import type { ParsedRun } from './runfile';
import { configChecks } from '../verdict';

/** XML 1.0 text: escaped, and without the control characters XML cannot carry (consoles have them). */
function xmlEscape(text: string): string {
  return text
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '\uFFFD')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

function attrs(values: Record<string, string | number>): string {
  return Object.entries(values)
    .map(([k, v]) => ` ${k}="${xmlEscape(String(v))}"`)
    .join('');
}

interface Outcome {
  element: 'failure' | 'error' | 'skipped' | null;
  type: string;
  message: string;
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(3);
}

export function renderJUnit(runs: ParsedRun[]): string {
  const grid = buildGrid(runs);
  const totals = { tests: 0, failures: 0, errors: 0, skipped: 0, ms: 0 };
  const suites: string[] = [];
  suitesOf(grid).forEach((suite, id) => {
    const { run } = suite.column.run;
    const classname = `${suite.column.label}/${suite.config}`;
    const testcases: string[] = [];
    const counts = { tests: 0, failures: 0, errors: 0, skipped: 0, ms: 0 };
    const add = (name: string, ms: number, outcome: Outcome, out: string): void => {
      counts.tests++;
      counts.ms += ms;
      if (outcome.element === 'failure') counts.failures++;
      if (outcome.element === 'error') counts.errors++;
      if (outcome.element === 'skipped') counts.skipped++;
      const inner = outcome.element
        ? `<${outcome.element}${attrs({ ...(outcome.element === 'skipped' ? {} : { type: outcome.type }), message: outcome.message })}/>`
        : '';
      testcases.push(
        `    <testcase${attrs({ classname, name, time: seconds(ms) })}>${inner}<system-out>${xmlEscape(out)}</system-out></testcase>`,
      );
    };
    for (const { row, cell } of suite.entries) {
      const [first] = cell.violations;
      const message = cell.violations.map((v) => `${v.kind}: ${v.detail}`).join('; ');
      const outcome: Outcome =
        cell.verdict === 'crashed'
          ? { element: 'error', type: 'crashed', message }
          : first
            ? { element: 'failure', type: first.kind, message }
            : cell.verdict === 'error'
              ? { element: 'error', type: cell.outcomeClass, message: cell.record?.error ?? cell.outcomeClass }
              : cell.verdict === 'map-refused'
                ? { element: 'skipped', type: '', message: `mapping refused: ${cell.outcomeClass}` }
                : cell.verdict === 'unsupported'
                ? { element: 'skipped', type: '', message: `not applicable: ${cell.record?.reason ?? ''}` }
                : cell.verdict === 'not-run'
                  ? { element: 'skipped', type: '', message: 'planned but not run' }
                  : { element: null, type: '', message: '' };
      add(row.caseId, cell.record?.durationMs ?? 0, outcome, detailsText(cellDetails(cell, suite.column.run, row)));
    }
    for (const check of suite.configRecord ? configChecks(suite.configRecord) : []) {
      const element = check.verdict === 'violation' ? 'failure' : check.verdict === 'error' ? 'error' : null;
      add(`config ${check.name}`, 0, { element, type: check.name, message: check.detail }, check.detail);
    }
    for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += counts[k];
    const dax = suite.configRecord ? String(suite.configRecord.daxVerified) : 'unknown';
    suites.push(
      `  <testsuite${attrs({
        name: `${suite.column.label} ${suite.config}`,
        id,
        package: 'daxpin',
        hostname: run.host,
        timestamp: run.startedAt,
        tests: counts.tests,
        failures: counts.failures,
        errors: counts.errors,
        skipped: counts.skipped,
        time: seconds(counts.ms),
      })}>\n` +
        `    <properties>${[
          ['kernel', run.kernel],
          ['runId', run.runId],
          ['runner', run.runner],
          ['config', suite.config],
          ['daxVerified', dax],
        ]
          .map(([name, value]) => `<property${attrs({ name, value })}/>`)
          .join('')}</properties>\n` +
        `${testcases.join('\n')}\n  </testsuite>`,
    );
  });
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<testsuites${attrs({ name: 'daxpin', tests: totals.tests, failures: totals.failures, errors: totals.errors, skipped: totals.skipped, time: seconds(totals.ms) })}>\n` +
    `${suites.join('\n')}\n</testsuites>\n`
  );
}
