// Bad and damaged input to report/compare: each gives one clear line and exit code 2;
// a killed run's torn last line is accepted with a warning.

import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { SCHEMA_VERSION } from '../../lib/outcome';
import { compareCommand, reportCommand } from '../../lib/report/commands';
import { notRunKeys, parseRunText, readRun } from '../../lib/report/runfile';
import { DaxpinError } from '../../lib/errors';
import { PLANTED, RUN_A, caseRecord, runAText, runBText } from '../fixtures/runs';

t.test('a complete run parses', async (t) => {
  const parsed = parseRunText(runAText(), 'a.jsonl');
  t.equal(parsed.run.runId, RUN_A);
  t.equal(parsed.cases.length, parsed.run.planned.length);
  t.equal(parsed.configs.length, 3);
  t.equal(parsed.end?.interrupted, false);
  t.same(parsed.warnings, []);
  t.same(notRunKeys(parsed), []);
});

t.test('a torn last line is dropped with a warning, and the run is valid up to it', async (t) => {
  const parsed = parseRunText(runBText(), 'b.jsonl');
  t.same(parsed.warnings, ['last line of b.jsonl is incomplete (killed run?); ignored']);
  t.equal(parsed.end, null, 'the torn line was the end record');
  t.same(notRunKeys(parsed).sort(), [...PLANTED.notRun].sort());
});

t.test('a complete last line without its newline is kept', async (t) => {
  const parsed = parseRunText(runAText().trimEnd(), 'a.jsonl');
  t.same(parsed.warnings, []);
  t.ok(parsed.end);
});

t.test('a case recorded twice keeps the later record, with a warning', async (t) => {
  const later = caseRecord('xfs-dax', 'none.truncate-shrink.pte-shared', { op: { ok: false, errno: 'EIO' } });
  const parsed = parseRunText(`${runAText()}${JSON.stringify(later)}\n`, 'a.jsonl');
  t.match(parsed.warnings, [/case xfs-dax\/none.truncate-shrink.pte-shared is recorded twice/]);
  t.equal(parsed.cases.filter((c) => c.caseId === 'none.truncate-shrink.pte-shared' && c.config === 'xfs-dax').length, 1);
  t.equal(parsed.cases.find((c) => c.caseId === 'none.truncate-shrink.pte-shared' && c.config === 'xfs-dax')?.op.errno, 'EIO');
});

t.test('malformed text is refused with one line naming the place', async (t) => {
  const lines = runAText().split('\n');
  const bad: [string, string, RegExp][] = [
    ['corrupt middle line', [...lines.slice(0, 3), '{"record":"case",', ...lines.slice(3)].join('\n'), /^x\.jsonl line 4 is not JSON/],
    ['empty', '', /^x\.jsonl is empty/],
    ['blank lines only', '\n\n  \n', /^x\.jsonl is empty/],
    ['a JSON array', '[1,2,3]\n', /^x\.jsonl line 1 is not a JSON object/],
    ['JSON without "record"', '{"name":"daxpin","version":"0.1.0"}\n', /^x\.jsonl line 1 has no daxpin "record" field/],
    ['a pretty-printed JSON file', '{\n  "record": "run"\n}\n', /^x\.jsonl line 1 is not JSON/],
    ['a newer schema', lines[0].replace(`"schema":${SCHEMA_VERSION}`, `"schema":${SCHEMA_VERSION + 1}`) + '\n', new RegExp(`schema version ${SCHEMA_VERSION + 1}, this daxpin reads version ${SCHEMA_VERSION}`)],
    ['no run record', lines.slice(1).join('\n'), /^x\.jsonl line 1: a case record before the run record/],
    ['only a torn run record', lines[0].slice(0, 40), /^x\.jsonl has no complete run record/],
    ['two run records', `${lines[0]}\n${lines[0]}\n`, /^x\.jsonl line 2: a second run record/],
    ['a record of another run', `${lines[0]}\n${lines[1].replace(RUN_A, 'other')}\n`, /^x\.jsonl line 2: record of run other in the file of run runA/],
    ['a case without its fields', `${lines[0]}\n{"record":"case","schema":${SCHEMA_VERSION},"runId":"${RUN_A}"}\n`, /^x\.jsonl line 2: case record without a valid "caseId"/],
    ['an unknown status', `${lines[0]}\n${lines[1].replace('"status":"done"', '"status":"great"')}\n`, /unknown case status "great"/],
  ];
  for (const [name, text, message] of bad) {
    const err = t.throws(() => parseRunText(text, 'x.jsonl'), name) as unknown as DaxpinError;
    t.type(err, DaxpinError, name);
    t.match(err.message, message, name);
    t.notMatch(err.message, /\n/, `${name}: one line`);
    t.equal(err.exitCode, 2);
  }
});

t.test('files that cannot be run files are refused', async (t) => {
  const dir = t.testdir({ 'empty.jsonl': '', 'notes.txt': 'hello\nworld\n', 'pkg.json': '{"name":"x"}\n', sub: {} });
  const cases: [string, RegExp][] = [
    [path.join(dir, 'missing.jsonl'), /missing\.jsonl: no such file$/],
    [path.join(dir, 'sub'), /sub is a directory; give the run's \.jsonl file$/],
    [path.join(dir, 'empty.jsonl'), /empty\.jsonl is empty; not a daxpin run file$/],
    [path.join(dir, 'notes.txt'), /notes\.txt line 1 is not JSON/],
    [path.join(dir, 'pkg.json'), /pkg\.json line 1 has no daxpin "record" field/],
    ['/dev/null', /\/dev\/null is not a regular file/],
  ];
  for (const [file, message] of cases) {
    t.throws(() => readRun(file), message, file);
  }
});

t.test('report and compare turn bad input into exit code 2 and one message line', async (t) => {
  const dir = t.testdir({
    'a.jsonl': runAText(),
    'b.jsonl': runBText(),
    'corrupt.jsonl': runAText().replace('"record":"config"', '"record":"config'),
    'foreign.json': '{"hello":"world"}\n',
    'expect-bad.json': '[{"kernel":">=6.x","outcomeClass":"ok"}]',
    sub: {},
  });
  const p = (name: string) => path.join(dir, name);
  const bad: [string, () => ReturnType<typeof reportCommand>, RegExp][] = [
    ['corrupt JSONL', () => reportCommand({ runs: [p('corrupt.jsonl')] }), /corrupt\.jsonl line \d+ is not JSON/],
    ['missing file', () => reportCommand({ runs: [p('a.jsonl'), p('nope.jsonl')] }), /nope\.jsonl: no such file/],
    ['a directory', () => reportCommand({ runs: [p('sub')] }), /sub is a directory/],
    ['non-daxpin JSON', () => reportCommand({ runs: [p('foreign.json')] }), /foreign\.json line 1 has no daxpin "record" field/],
    ['no runs', () => reportCommand({ runs: [] }), /^no run files given$/],
    ['the same run twice', () => reportCommand({ runs: [p('a.jsonl'), p('a.jsonl')] }), /are the same run \(runA-20250101\)/],
    ['unknown format', () => reportCommand({ runs: [p('a.jsonl')], format: 'pdf' }), /unknown --format "pdf"; use one of html, md, mail, junit, tap, kcidb, ktap/],
    ['unwritable --out', () => reportCommand({ runs: [p('a.jsonl')], out: p('no/such/dir/r.html') }), /cannot write .*r\.html: its directory does not exist/],
    ['--out is a directory', () => reportCommand({ runs: [p('a.jsonl')], out: p('sub') }), /cannot write .*sub: it is a directory/],
    ['bad expectations', () => reportCommand({ runs: [p('a.jsonl')], expectations: p('expect-bad.json') }), /entry 0: bad version comparator ">=6\.x"/],
    ['missing expectations', () => reportCommand({ runs: [p('a.jsonl')], expectations: p('nope.json') }), /nope\.json: no such file/],
    ['compare: corrupt base', () => compareCommand({ base: p('corrupt.jsonl'), next: p('b.jsonl') }), /corrupt\.jsonl line \d+ is not JSON/],
    ['compare: missing next', () => compareCommand({ base: p('a.jsonl'), next: p('nope.jsonl') }), /nope\.jsonl: no such file/],
    ['compare: directory', () => compareCommand({ base: p('sub'), next: p('a.jsonl') }), /sub is a directory/],
  ];
  for (const [name, run, message] of bad) {
    const res = run();
    t.equal(res.exitCode, 2, `${name}: exit 2`);
    t.equal(res.output, '', `${name}: no output`);
    t.equal(res.messages.length, 1, `${name}: one message`);
    t.match(res.messages[0], message, name);
    t.notMatch(res.messages[0], /\n/, `${name}: one line`);
  }
});

t.test('report accepts a torn last line and says so; --out picks the format from its extension', async (t) => {
  const dir = t.testdir({ 'a.jsonl': runAText(), 'b.jsonl': runBText() });
  const out = path.join(dir, 'report.html');
  const res = reportCommand({ runs: [path.join(dir, 'a.jsonl'), path.join(dir, 'b.jsonl')], out });
  t.equal(res.exitCode, 0);
  t.same(res.messages, [`last line of ${path.join(dir, 'b.jsonl')} is incomplete (killed run?); ignored`, `wrote ${out} (html)`]);
  t.match(fs.readFileSync(out, 'utf8'), /^<!doctype html>/);
  const md = reportCommand({ runs: [path.join(dir, 'a.jsonl')] });
  t.match(md.output, /^# daxpin report/, 'Markdown to stdout by default');
});

t.test('a kernel-log record (lines as the runners write them: objects) reads without a warning', async (t) => {
  const line = { level: 4, signature: 'WARNING: at fs/dax.c dax_disassociate_entry', text: '[   12.3] WARNING: CPU: 0 PID: 185 at fs/dax.c:398 dax_disassociate_entry+0x87/0xb0' };
  const record = { record: 'kernel-log', schema: SCHEMA_VERSION, runId: RUN_A, kernel: '6.1.0-50-amd64', phase: 'between-cases', config: 'xfs-dax', after: null, before: null, lines: [line] };
  const run = parseRunText(`${runAText().trimEnd()}\n${JSON.stringify(record)}\n`);
  t.same(run.warnings, []);
});
