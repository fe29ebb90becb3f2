// Render runs in one of the report formats.

import type { Expectation } from './expectations';
import { checkExpectations } from './expectations';
import { renderHtml } from './html';
import { renderJUnit } from './junit';
import { renderKcidb } from './kcidb';
import { renderKtap } from './ktap';
import { renderMail } from './mail';
import { renderMarkdown } from './markdown';
import type { ParsedRun } from './runfile';
import { renderTap } from './tap';

export const REPORT_FORMATS = ['html', 'md', 'mail', 'junit', 'tap', 'kcidb', 'ktap'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

export interface RenderOptions {
  /** Compared with the measurements in the HTML and Markdown reports. */
  expectations?: Expectation[];
  /** Runs the mail compares its findings with. */
  baseline?: ParsedRun[];
}

export function renderReport(runs: ParsedRun[], format: ReportFormat, opts: RenderOptions = {}): string {
  const deviations = opts.expectations ? checkExpectations(runs, opts.expectations) : undefined;
  switch (format) {
    case 'html':
      return renderHtml(runs, { deviations });
    case 'md':
      return renderMarkdown(runs, { deviations });
    case 'mail':
      return renderMail(runs, { baseline: opts.baseline });
    case 'junit':
      return renderJUnit(runs);
    case 'tap':
      return renderTap(runs);
    case 'kcidb':
      return renderKcidb(runs);
    case 'ktap':
      return renderKtap(runs);
  }
}
