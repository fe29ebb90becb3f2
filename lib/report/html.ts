// A static, self-contained HTML page: the case matrix (rows grouped by config,
// pin method, layout op, mapping) × runs (one column per kernel). Everything is
// inline and the page's Content-Security-Policy forbids any network access, so it
// can be mailed, archived as a CI artefact or opened from disk.

import { keyValues } from './compare';
import { cellDetails, detailsText } from './details';
import type { Deviation } from './expectations';
import { buildGrid } from './grid';
import type { Cell, CellVerdict, Column, Grid, Row } from './grid';
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

interface CellData {
  title: string;
  verdict: CellVerdict;
  text: string;
}

export function renderHtml(runs: ParsedRun[], opts: HtmlOptions = {}): string {
  const grid = buildGrid(runs);
  const deviations = new Map((opts.deviations ?? []).map((d) => [`${d.runId}\t${d.key}`, d]));
  const cellData: CellData[] = [];
  const body: string[] = [];
  for (const config of grid.configs) {
    body.push(groupRow(grid, config));
    for (const row of grid.rows.filter((r) => r.config === config)) {
      body.push(caseRow(grid, row, deviations, cellData));
    }
  }
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
<div class="legend">${VERDICTS.map(([v, what]) => `<span class="chip v-${v}">${esc(v)}</span> ${esc(what)}`).join(' ')}</div>
<form id="filters" onsubmit="return false">
${select('config', 'config', grid.rows.map((r) => r.config))}
${select('pin', 'pin method', grid.rows.map((r) => r.pinMethod))}
${select('op', 'layout op', grid.rows.map((r) => r.layoutOp))}
${select('mapping', 'mapping', grid.rows.map((r) => r.mapping))}
${select('verdict', 'verdict', VERDICTS.map(([v]) => v).filter((v) => grid.rows.some((r) => r.cells.some((c) => c?.verdict === v))))}
<label>text <input id="f-text" type="search" placeholder="case id or outcome class"></label>
<span id="count" aria-live="polite"></span>
</form>
</header>
<main>
<table id="matrix">
<thead><tr><th>config</th><th>pin method</th><th>layout op</th><th>mapping</th>${grid.columns
    .map((c) => `<th class="kernel">${esc(c.label)}<br><small>${esc(`${c.run.run.runner}${c.run.run.accel ? `/${c.run.run.accel}` : ''} · ${c.run.run.runId}`)}</small></th>`)
    .join('')}</tr></thead>
<tbody>
${body.join('\n')}
</tbody>
</table>
</main>
<aside id="details" hidden>
<button type="button" id="details-close" aria-label="close">×</button>
<h2 id="details-title"></h2>
<pre id="details-text"></pre>
</aside>
<script type="application/json" id="cell-data">${scriptJson(cellData)}</script>
<script>${SCRIPT}</script>
</body>
</html>
`;
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

function select(id: string, label: string, values: string[]): string {
  const options = [...new Set(values)].map((v) => `<option value="${esc(v)}">${esc(v)}</option>`).join('');
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
  return `<tr class="group" data-config="${esc(config)}"><th colspan="${4 + grid.columns.length}">${esc(config)} ${perRun.join(' ')}</th></tr>`;
}

function caseRow(grid: Grid, row: Row, deviations: Map<string, Deviation>, cellData: CellData[]): string {
  const verdicts = [...new Set(row.cells.filter((c): c is Cell => c !== null).map((c) => c.verdict))];
  const classes = row.cells.map((c) => c?.outcomeClass ?? '').join(' ');
  const cells = row.cells.map((cell, i) => {
    if (cell === null) return '<td class="cell none">—</td>';
    const column = grid.columns[i];
    const deviation = deviations.get(`${column.run.run.runId}\t${row.key}`);
    const details = cellDetails(cell, column.run, row);
    const text = detailsText(details) + (deviation ? `\nexpected: ${deviation.expected}${deviation.note ? ` (${deviation.note})` : ''}` : '');
    cellData.push({ title: `${row.key} on ${column.label}`, verdict: cell.verdict, text });
    const hover = [cell.outcomeClass, keyValues(cell), ...details.violations].filter((s) => s !== '').join('\n');
    return (
      `<td class="cell v-${cell.verdict}" data-cell="${cellData.length - 1}" data-verdict="${cell.verdict}" tabindex="0" title="${esc(hover)}">` +
      `${esc(cell.outcomeClass)}${cell.violations.length > 0 ? `<span class="marks">${esc([...new Set(cell.violations.map((v) => v.kind))].join(' '))}</span>` : ''}` +
      `${deviation ? `<span class="deviation">≠ expected ${esc(deviation.expected)}</span>` : ''}</td>`
    );
  });
  return (
    `<tr class="case" data-key="${esc(row.key)}" data-config="${esc(row.config)}" data-pin="${esc(row.pinMethod)}" data-op="${esc(row.layoutOp)}" ` +
    `data-mapping="${esc(row.mapping)}" data-verdicts="${esc(verdicts.join(' '))}" data-text="${esc(`${row.key} ${classes}`.toLowerCase())}">` +
    `<td>${esc(row.config)}</td><td>${esc(row.pinMethod)}</td><td>${esc(row.layoutOp)}</td><td>${esc(row.mapping)}</td>${cells.join('')}</tr>`
  );
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
main { padding: 0 16px 16px; }
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

// Filters hide rows (and group headers left empty); a click, Enter or Space on a
// cell shows its details. Text goes in with textContent only.
const SCRIPT = `
(function () {
  var data = JSON.parse(document.getElementById('cell-data').textContent);
  var rows = Array.prototype.slice.call(document.querySelectorAll('#matrix tr.case'));
  var groups = Array.prototype.slice.call(document.querySelectorAll('#matrix tr.group'));
  var f = {};
  ['config', 'pin', 'op', 'mapping', 'verdict', 'text'].forEach(function (k) { f[k] = document.getElementById('f-' + k); });
  function apply() {
    var text = f.text.value.trim().toLowerCase(), shown = 0, perGroup = {};
    rows.forEach(function (r) {
      var d = r.dataset;
      var ok = (!f.config.value || d.config === f.config.value) && (!f.pin.value || d.pin === f.pin.value) &&
        (!f.op.value || d.op === f.op.value) && (!f.mapping.value || d.mapping === f.mapping.value) &&
        (!f.verdict.value || d.verdicts.split(' ').indexOf(f.verdict.value) !== -1) &&
        (!text || d.text.indexOf(text) !== -1);
      r.classList.toggle('hidden', !ok);
      if (ok) { shown++; perGroup[d.config] = true; }
    });
    groups.forEach(function (g) { g.classList.toggle('hidden', !perGroup[g.dataset.config]); });
    document.getElementById('count').textContent = 'showing ' + shown + ' of ' + rows.length + ' cases';
  }
  Object.keys(f).forEach(function (k) { f[k].addEventListener(k === 'text' ? 'input' : 'change', apply); });
  var panel = document.getElementById('details'), selected = null;
  function show(td) {
    var d = data[Number(td.dataset.cell)];
    if (selected) selected.classList.remove('selected');
    selected = td; td.classList.add('selected');
    var title = document.getElementById('details-title');
    title.textContent = d.title + ' — ' + d.verdict;
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
