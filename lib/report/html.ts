// A static, self-contained HTML page: the case matrix (rows grouped by config,
// pin method, layout op, mapping) × runs (one column per kernel). Everything is
// inline and the page's Content-Security-Policy forbids any network access, so it
// can be mailed, archived as a CI artefact or opened from disk.

import { computeFindings, rateText } from '../findings/findings';
import type { FindingsReport } from '../findings/findings';
import { reproCommand } from '../findings/reproduce';
import { cellDetails, detailsBody } from './details';
import type { Deviation } from './expectations';
import { buildGrid } from './grid';
import type { Cell, CellVerdict, Column, Grid, Row } from './grid';
import { findingsRun } from './runfile';
import type { ParsedRun } from './runfile';
import { configViolations } from '../verdict';

export interface HtmlOptions {
  deviations?: Deviation[];
  title?: string;
}

/** Verdicts in legend and filter order, with what a reader should take from each colour. */
const VERDICTS: [CellVerdict, string][] = [
  ['violation', 'invariant violated'],
  ['crashed', 'kernel crashed'],
  ['error', 'not measured (setup error, abandoned)'],
  ['waited', 'op waited for the release'],
  ['refused', 'pin or op refused'],
  ['map-refused', 'mapping refused (not applicable)'],
  ['unsupported', 'pin or op not supported here (not applicable)'],
  ['ok', 'op returned while pinned'],
  ['not-run', 'planned, not run'],
];

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

/** JSON inside a <script> element: '<' escaped so no "</script>" can end it early. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

/**
 * The page's data: the matrix is drawn by the page's script from this, not sent as
 * HTML, and every string is sent once (a seven-kernel default matrix has 15 000
 * cells whose texts repeat). A cell is [class, verdict, marks, deviation, took ms,
 * started (s after the run's start), line…], each a string index; 0 is a cell
 * whose case was not planned in that run.
 */
interface PageData {
  strings: string[];
  columns: { label: string; reproduce: number; startedAt: number }[];
  /** [key, config, pin, op, mapping, differs (0/1), finding indexes, cells…]. */
  rows: (number | number[] | 0)[][];
}

/** Placeholders the page replaces with a row's config and case id in a column's reproducer. */
const CONFIG_SLOT = 'XCONFIGX';
const CASE_SLOT = 'XCASEX';

class Strings {
  readonly list: string[] = [];
  private readonly index = new Map<string, number>();
  of(s: string): number {
    let i = this.index.get(s);
    if (i === undefined) {
      i = this.list.length;
      this.list.push(s);
      this.index.set(s, i);
    }
    return i;
  }
}

/** Whether a row's outcome differs between the kernels that ran it. */
function rowDiffers(row: Row): boolean {
  const classes = new Set(row.cells.filter((c): c is Cell => c !== null && c.verdict !== 'not-run').map((c) => `${c.outcomeClass}|${c.verdict}`));
  return classes.size > 1;
}

export function renderHtml(runs: ParsedRun[], opts: HtmlOptions = {}): string {
  const grid = buildGrid(runs);
  const report = computeFindings(runs.map(findingsRun));
  const deviations = new Map((opts.deviations ?? []).map((d) => [`${d.runId}\t${d.key}`, d]));
  const strings = new Strings();
  strings.of(''); // index 0: nothing
  const findingsOfRow = new Map<string, number[]>();
  report.findings.forEach((f, i) => {
    for (const key of f.cases) findingsOfRow.set(key, [...(findingsOfRow.get(key) ?? []), i]);
  });
  const differs = new Set(grid.rows.filter(rowDiffers));
  const differing = grid.rows.filter((r) => differs.has(r));
  const rest = grid.rows.filter((r) => !differs.has(r));
  const data: PageData = {
    strings: strings.list,
    columns: grid.columns.map((c) => ({
      label: c.label,
      reproduce: strings.of(reproCommand(c.run.run, CONFIG_SLOT, CASE_SLOT)),
      startedAt: Date.parse(c.run.run.startedAt) || 0,
    })),
    rows: [...differing, ...rest].map((row) => [
      strings.of(row.key),
      strings.of(row.config),
      strings.of(row.pinMethod),
      strings.of(row.layoutOp),
      strings.of(row.mapping),
      differs.has(row) ? 1 : 0,
      findingsOfRow.get(row.key) ?? [],
      ...row.cells.map((cell, i) => (cell === null ? 0 : cellData(grid, row, cell, i, deviations, strings))),
    ]),
  };
  const title = opts.title ?? `daxpin report: ${grid.columns.map((c) => c.label).join(' vs ')}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${CSS}</style>
</head>
<body>
<header>
<h1>${esc(title)}</h1>
${runsTable(grid)}
${warningsList(runs)}
</header>
${findingsSection(report)}
<section id="cases">
<h2>Cases <small>(${differing.length} of ${grid.rows.length} differ between kernels: those first)</small></h2>
<div class="legend">${VERDICTS.map(([v, what]) => `<span class="chip v-${v}">${esc(v)}</span> ${esc(what)}`).join(' ')}</div>
<form id="filters" onsubmit="return false">
${select('finding', 'finding', report.findings.map((f) => f.id), report.findings.map((_, i) => String(i)))}
${select('config', 'config', grid.rows.map((r) => r.config))}
${select('pin', 'pin method', grid.rows.map((r) => r.pinMethod))}
${select('op', 'layout op', grid.rows.map((r) => r.layoutOp))}
${select('mapping', 'mapping', grid.rows.map((r) => r.mapping))}
${select('verdict', 'verdict', VERDICTS.map(([v]) => v).filter((v) => grid.rows.some((r) => r.cells.some((c) => c?.verdict === v))))}
<label>text <input id="f-text" type="search" placeholder="case id or outcome class"></label>
<span id="count" aria-live="polite"></span>
</form>
<table id="matrix">
<thead><tr><th>config</th><th>pin method</th><th>layout op</th><th>mapping</th>${grid.columns
    .map((c) => `<th class="kernel">${esc(c.label)}<br><small>${esc(`${c.run.run.runner}${c.run.run.accel ? `/${c.run.run.accel}` : ''} · ${c.run.run.runId}`)}</small></th>`)
    .join('')}</tr></thead>
<tbody>
${differing.length > 0 ? `<tr class="group" data-group="differs"><th colspan="${4 + grid.columns.length}">outcome differs between kernels (${differing.length})</th></tr>\n` : ''}${grid.configs
    .map((config) => groupRow(grid, config))
    .join('\n')}
</tbody>
</table>
</section>
<aside id="details" hidden>
<button type="button" id="details-close" aria-label="close">×</button>
<h2 id="details-title"></h2>
<pre id="details-text"></pre>
</aside>
<script type="application/json" id="page-data">${scriptJson(data)}</script>
<script>${SCRIPT}</script>
</body>
</html>
`;
}

function cellData(grid: Grid, row: Row, cell: Cell, i: number, deviations: Map<string, Deviation>, strings: Strings): number[] {
  const column = grid.columns[i];
  const deviation = deviations.get(`${column.run.run.runId}\t${row.key}`);
  const details = cellDetails(cell, column.run, row);
  const lines = detailsBody(details).filter((l) => !l.startsWith('took '));
  if (deviation) lines.push(`expected: ${deviation.expected}${deviation.note ? ` (${deviation.note})` : ''}`);
  const marks = [...new Set(cell.violations.map((v) => v.kind))].join(' ');
  const started = cell.record ? Math.round((Date.parse(cell.record.startedAt) - (Date.parse(column.run.run.startedAt) || 0)) / 1000) : 0;
  return [
    strings.of(cell.outcomeClass),
    strings.of(cell.verdict),
    strings.of(marks),
    strings.of(deviation ? `≠ expected ${deviation.expected}` : ''),
    cell.record ? cell.record.durationMs : -1,
    Number.isFinite(started) ? started : 0,
    ...lines.map((l) => strings.of(l)),
  ];
}

function findingsSection(report: FindingsReport): string {
  if (report.findings.length === 0) return '<section id="findings"><h2>Findings</h2><p>None: no predicate of the findings table matched a case.</p></section>';
  const head = report.kernels.map((k) => `<th class="kernel">${esc(k.kernel)}</th>`).join('');
  const rows = report.findings.map((f, i) => {
    const cells = f.kernels
      .map((k) => `<td class="p-${k.status}" title="${esc(k.cases.map((c) => `${c.key} ${rateText(c)}`).join('\n'))}">${esc(k.status)}${k.runs > 0 ? ` ${rateText(k)}` : ''}</td>`)
      .join('');
    return (
      `<tr class="finding s-${f.predicate.severity}" data-finding="${i}"><td><a href="#cases" class="finding-link" data-finding="${i}">${esc(f.id)}</a>` +
      `${f.flaky ? ' <span class="flaky">flaky</span>' : ''}<br><small>${esc(f.title)}</small></td><td>${esc(f.predicate.severity)}</td>` +
      `<td>${f.cases.length}</td>${cells}<td><code>${esc(f.reproduce)}</code></td></tr>`
    );
  });
  return `<section id="findings"><h2>Findings (${report.findings.length})</h2>
<p>A finding is one predicate of the findings table over the observed outcomes, grouped by the rows its cases share; a rate is runs that showed it over runs that could. Click one to see its cases.</p>
<table class="findings"><thead><tr><th>finding</th><th>kind</th><th>cases</th>${head}<th>reproduce</th></tr></thead><tbody>
${rows.join('\n')}
</tbody></table></section>`;
}

function runsTable(grid: Grid): string {
  const counts = (i: number): string =>
    VERDICTS.map(([v]) => [v, grid.rows.filter((r) => r.cells[i]?.verdict === v).length] as const)
      .filter(([, n]) => n > 0)
      .map(([v, n]) => `<span class="chip v-${v}">${esc(v)} ${n}</span>`)
      .join(' ');
  const rows = grid.columns.map((c: Column, i) => {
    const { run, end } = c.run;
    const finished = end === null ? 'no end record (killed?)' : end.interrupted ? 'interrupted' : end.error ? `stopped: ${end.error}` : 'finished';
    return `<tr><td>${esc(c.label)}</td><td>${esc(run.runner)}${run.accel ? `/${esc(run.accel)}` : ''}</td><td>${esc(run.host)}</td><td>${esc(run.startedAt)}</td><td>${esc(finished)}</td><td>${counts(i)}</td></tr>`;
  });
  return `<table class="runs"><thead><tr><th>kernel</th><th>runner</th><th>host</th><th>started</th><th>end</th><th>cases by verdict</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function warningsList(runs: ParsedRun[]): string {
  const warnings = runs.flatMap((r) => r.warnings);
  return warnings.length === 0 ? '' : `<ul class="warnings">${warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul>`;
}

function select(id: string, label: string, names: string[], values: string[] = names): string {
  const seen = new Set<string>();
  const options = names
    .map((name, i) => [name, values[i]] as const)
    .filter(([name]) => !seen.has(name) && seen.add(name) !== undefined)
    .map(([name, value]) => `<option value="${esc(value)}">${esc(name)}</option>`)
    .join('');
  return `<label>${esc(label)} <select id="f-${id}"><option value="">all</option>${options}</select></label>`;
}

function groupRow(grid: Grid, config: string): string {
  const perRun = grid.columns.map((c) => {
    const rec = c.configs.get(config);
    if (!rec) return `<span>${esc(c.label)}: no config record</span>`;
    const bad = rec.error !== undefined || configViolations(rec).length > 0;
    const words = [
      rec.error ? `setup failed: ${rec.error}` : rec.daxVerified ? 'DAX verified' : 'not DAX',
      rec.fsck === null ? '' : rec.fsck.ok ? 'fsck clean' : `fsck FAILED (exit ${rec.fsck.exitCode})`,
    ].filter((w) => w !== '');
    return `<span class="${bad ? 'bad' : ''}">${esc(`${c.label}: ${words.join(', ')}`)}</span>`;
  });
  return `<tr class="group" data-group="${esc(config)}" data-config="${esc(config)}"><th colspan="${4 + grid.columns.length}">${esc(config)} ${perRun.join(' ')}</th></tr>`;
}

const CSS = `
body { font: 13px/1.35 system-ui, sans-serif; margin: 0; color: #222; background: #fafafa; }
header { padding: 8px 16px; background: #fff; border-bottom: 1px solid #ddd; }
h1 { font-size: 18px; margin: 4px 0 8px; }
table { border-collapse: collapse; }
.runs td, .runs th { padding: 2px 8px; border-bottom: 1px solid #eee; text-align: left; }
.warnings { color: #8a4b00; margin: 6px 0; }
.legend { margin: 8px 0; line-height: 2; }
.chip { display: inline-block; padding: 0 6px; border-radius: 3px; font-size: 12px; }
#filters { display: flex; flex-wrap: wrap; gap: 12px; align-items: center; margin: 6px 0; }
#count { color: #555; }
main, section { padding: 0 16px 16px; }
section h2 { font-size: 16px; margin: 12px 0 6px; }
.findings td, .findings th { border: 1px solid #e0e0e0; padding: 2px 6px; text-align: left; vertical-align: top; }
.findings tr.s-violation td:first-child { border-left: 4px solid #d32f2f; }
.findings code { font-size: 11px; }
.p-present { background: #ffcdd2; } .p-absent { background: #c8e6c9; } .p-not-run, .p-not-measured { color: #777; }
.flaky { background: #ffe082; padding: 0 4px; border-radius: 3px; font-size: 11px; }
#matrix th, #matrix td { border: 1px solid #e0e0e0; padding: 2px 6px; text-align: left; vertical-align: top; }
#matrix thead th { position: sticky; top: 0; background: #f0f0f0; z-index: 1; }
#matrix tr.group th { background: #e8eaf6; font-size: 14px; padding: 6px; }
#matrix tr.group span { font-weight: normal; font-size: 12px; margin-left: 12px; }
#matrix tr.group span.bad { color: #b71c1c; font-weight: bold; }
#matrix tr.hidden { display: none; }
.cell { cursor: pointer; font-family: ui-monospace, monospace; font-size: 12px; min-width: 11em; }
.cell:focus { outline: 2px solid #1a237e; }
.cell.selected { outline: 3px solid #1a237e; }
.cell.none { color: #bbb; cursor: default; }
.marks, .deviation { display: block; font-size: 11px; font-weight: bold; }
.v-violation { background: #d32f2f; color: #fff; }
.v-crashed { background: #111; color: #fff; }
.v-error { background: #6a1b9a; color: #fff; }
.v-waited { background: #ffb300; color: #000; }
.v-refused { background: #78909c; color: #fff; }
.v-map-refused, .v-unsupported { background: #cfd8dc; color: #263238; }
.v-ok { background: #81c784; color: #0b3d0e; }
.v-not-run { background: #f5f5f5; color: #777; border-style: dashed !important; }
#details { position: fixed; right: 0; top: 0; bottom: 0; width: min(40em, 42vw); overflow: auto; background: #fff;
  border-left: 2px solid #333; padding: 8px 16px; box-shadow: -4px 0 12px rgba(0,0,0,.2); z-index: 2; }
#details h2 { font-size: 14px; margin: 4px 24px 8px 0; }
#details pre { white-space: pre-wrap; word-break: break-word; font-size: 12px; }
#details-close { position: absolute; right: 8px; top: 6px; font-size: 18px; border: none; background: none; cursor: pointer; }
`;

// The matrix rows are drawn here from the page data (see PageData); filters hide rows
// (and group headers left empty); a click, Enter or Space on a cell shows its
// details; a finding's link filters the matrix to its cases. Text goes in with
// textContent only.
const SCRIPT = `
(function () {
  var data = JSON.parse(document.getElementById('page-data').textContent);
  var S = data.strings, cells = [];
  var groups = {};
  Array.prototype.forEach.call(document.querySelectorAll('#matrix tr.group'), function (g) {
    groups[g.dataset.group] = { header: g, frag: document.createDocumentFragment() };
  });
  data.rows.forEach(function (r, ri) {
    var tr = document.createElement('tr'), key = S[r[0]], config = S[r[1]];
    tr.className = 'case';
    tr.dataset.key = key; tr.dataset.config = config; tr.dataset.pin = S[r[2]]; tr.dataset.op = S[r[3]]; tr.dataset.mapping = S[r[4]];
    tr.dataset.group = r[5] ? 'differs' : config;
    tr.dataset.findings = ' ' + r[6].join(' ') + ' ';
    [1, 2, 3, 4].forEach(function (i) { var td = document.createElement('td'); td.textContent = S[r[i]]; tr.appendChild(td); });
    var verdicts = [], classes = [];
    for (var i = 7; i < r.length; i++) {
      var c = r[i], td = document.createElement('td');
      if (c === 0) { td.className = 'cell none'; td.textContent = '\u2014'; tr.appendChild(td); continue; }
      var verdict = S[c[1]];
      td.className = 'cell v-' + verdict; td.dataset.cell = cells.length; td.dataset.verdict = verdict; td.tabIndex = 0;
      td.textContent = S[c[0]]; td.title = S[c[0]];
      if (c[2]) { var m = document.createElement('span'); m.className = 'marks'; m.textContent = S[c[2]]; td.appendChild(m); }
      if (c[3]) { var d = document.createElement('span'); d.className = 'deviation'; d.textContent = S[c[3]]; td.appendChild(d); }
      cells.push([ri, i - 7]);
      if (verdicts.indexOf(verdict) === -1) verdicts.push(verdict);
      classes.push(S[c[0]]);
      tr.appendChild(td);
    }
    tr.dataset.verdicts = verdicts.join(' ');
    tr.dataset.text = (key + ' ' + classes.join(' ')).toLowerCase();
    (groups[tr.dataset.group] || groups[config]).frag.appendChild(tr);
  });
  Object.keys(groups).forEach(function (k) { var g = groups[k]; g.header.parentNode.insertBefore(g.frag, g.header.nextSibling); });
  function details(n) {
    var rc = cells[n], r = data.rows[rc[0]], c = r[7 + rc[1]], col = data.columns[rc[1]];
    var key = S[r[0]], config = S[r[1]], lines = ['case: ' + key, 'kernel: ' + col.label];
    for (var i = 6; i < c.length; i++) lines.push(S[c[i]]);
    if (c[4] >= 0) lines.push('took ' + c[4] + ' ms, started ' + new Date(col.startedAt + c[5] * 1000).toISOString().replace(/\\.\\d+Z$/, 'Z'));
    lines.push('reproduce: ' + S[col.reproduce].replace('${CONFIG_SLOT}', config).replace('${CASE_SLOT}', key.slice(config.length + 1)));
    return { title: key + ' on ' + col.label, verdict: S[c[1]], text: lines.join('\\n') };
  }
  var rows = Array.prototype.slice.call(document.querySelectorAll('#matrix tr.case'));
  var groupRows = Array.prototype.slice.call(document.querySelectorAll('#matrix tr.group'));
  var f = {};
  ['finding', 'config', 'pin', 'op', 'mapping', 'verdict', 'text'].forEach(function (k) { f[k] = document.getElementById('f-' + k); });
  function apply() {
    var text = f.text.value.trim().toLowerCase(), shown = 0, perGroup = {};
    rows.forEach(function (r) {
      var d = r.dataset;
      var ok = (!f.finding.value || d.findings.indexOf(' ' + f.finding.value + ' ') !== -1) &&
        (!f.config.value || d.config === f.config.value) && (!f.pin.value || d.pin === f.pin.value) &&
        (!f.op.value || d.op === f.op.value) && (!f.mapping.value || d.mapping === f.mapping.value) &&
        (!f.verdict.value || d.verdicts.split(' ').indexOf(f.verdict.value) !== -1) &&
        (!text || d.text.indexOf(text) !== -1);
      r.classList.toggle('hidden', !ok);
      if (ok) { shown++; perGroup[d.group] = true; }
    });
    groupRows.forEach(function (g) { g.classList.toggle('hidden', !perGroup[g.dataset.group]); });
    document.getElementById('count').textContent = 'showing ' + shown + ' of ' + rows.length + ' cases';
  }
  Object.keys(f).forEach(function (k) { f[k].addEventListener(k === 'text' ? 'input' : 'change', apply); });
  Array.prototype.forEach.call(document.querySelectorAll('a.finding-link'), function (a) {
    a.addEventListener('click', function () { f.finding.value = a.dataset.finding; apply(); });
  });
  var panel = document.getElementById('details'), selected = null;
  function show(td) {
    var d = details(Number(td.dataset.cell));
    if (selected) selected.classList.remove('selected');
    selected = td; td.classList.add('selected');
    var title = document.getElementById('details-title');
    title.textContent = d.title + ' \u2014 ' + d.verdict;
    title.className = 'v-' + d.verdict;
    document.getElementById('details-text').textContent = d.text;
    panel.hidden = false;
  }
  document.getElementById('matrix').addEventListener('click', function (e) {
    var td = e.target.closest('td[data-cell]');
    if (td) show(td);
  });
  document.getElementById('matrix').addEventListener('keydown', function (e) {
    var td = e.target.closest('td[data-cell]');
    if (td && (e.key === 'Enter' || e.key === ' ')) { e.preventDefault(); show(td); }
  });
  document.getElementById('details-close').addEventListener('click', function () { panel.hidden = true; });
  document.addEventListener('keydown', function (e) { if (e.key === 'Escape') panel.hidden = true; });
  apply();
})();
`;
