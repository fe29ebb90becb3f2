// daxpin's reports: pure functions from run files (JSONL) to what people read and
// CI systems ingest. Nothing here runs a case.

export { REPORT_FORMATS, renderReport } from './render';
export type { RenderOptions, ReportFormat } from './render';
export { compareRuns, renderComparison } from './compare';
export type { CaseChange, Comparison, ConfigChange, Regression } from './compare';
export { compareCommand, reportCommand } from './commands';
export type { CommandResult, CompareOptions, ReportOptions } from './commands';
export { checkExpectations, kernelInRange, kernelVersion, parseExpectations, readExpectations } from './expectations';
export type { Deviation, Expectation } from './expectations';
export { buildGrid } from './grid';
export type { Cell, CellVerdict, Grid, Row } from './grid';
export { renderHtml } from './html';
export { renderJUnit } from './junit';
export { KCIDB_VERSION, kcidbReport, kcidbStatus, renderKcidb } from './kcidb';
export { renderMarkdown } from './markdown';
export { parseRunText, readRun, readRuns, ReportInputError } from './runfile';
export type { ParsedRun } from './runfile';
export { renderTap } from './tap';
export { configViolations, invariantViolations, isSevereKernelLine, outcomeClass, verdictOf } from './verdict';
export type { Verdict, Violation, ViolationKind } from './verdict';
