// What a run leaves beside its JSONL: the HTML report and the mail, and a short
// findings summary for the terminal. Used by `daxpin run` and `daxpin vm` when they end.

import * as fs from 'node:fs';
import { computeFindings, rateText } from '../findings/findings';
import { renderHtml } from './html';
import { renderMail } from './mail';
import { findingsRun, readRuns } from './runfile';

export interface RunReports {
  html: string;
  mail: string;
  /** The terminal summary, one finding a line, violations first. */
  lines: string[];
}

/** Summary lines shown for at most this many findings; the rest are counted. */
const SHOWN = 12;

/** Writes `<stem>.html` and `<stem>.mail.txt` from the run files; returns what to print. */
export function writeRunReports(files: string[], stem: string): RunReports {
  const runs = readRuns(files);
  const report = computeFindings(runs.map(findingsRun));
  const html = `${stem}.html`;
  const mail = `${stem}.mail.txt`;
  fs.writeFileSync(html, renderHtml(runs));
  fs.writeFileSync(mail, renderMail(runs));
  const present = report.findings.filter((f) => f.kernels.some((k) => k.status === 'present'));
  const lines = [`daxpin: ${present.length} finding(s) on ${report.kernels.map((k) => k.kernel).join(', ')}:`];
  for (const f of present.slice(0, SHOWN)) {
    const where = f.kernels.map((k) => `${k.kernel} ${k.status === 'present' || k.status === 'absent' ? rateText(k) : k.status}`).join(', ');
    lines.push(`  ${f.predicate.severity === 'violation' ? '!!' : '  '} ${f.id}${f.flaky ? ' (flaky)' : ''}: ${where}`);
  }
  if (present.length > SHOWN) lines.push(`  ... ${present.length - SHOWN} more in the reports`);
  lines.push(`daxpin: reports: ${html}, ${mail}`);
  return { html, mail, lines };
}
