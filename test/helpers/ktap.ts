// A strict KTAP version 1 parser (Documentation/dev-tools/ktap.rst) for the tests: every
// level starts with "KTAP version 1" and its plan (diagnostic lines such as "# Subtest:" may
// come between), subtests are indented by two more spaces and end with their parent's result
// line, results are numbered 1..N as planned, a parent with a failed subtest fails, and no
// line is of an unknown kind. It throws on the first line that breaks a rule.

export interface KtapTest {
  number: number;
  ok: boolean;
  name: string;
  /** 'SKIP' or null. */
  directive: 'SKIP' | null;
  /** The text after `#` (after SKIP for a skip). */
  note: string;
  /** Diagnostic lines ("# …") seen since the previous result at this level. */
  diagnostics: string[];
  subtests: KtapTest[] | null;
  /** "# Subtest: NAME" of the subtest block, if it had one. */
  subtestName: string | null;
}

export interface KtapDocument {
  plan: number;
  tests: KtapTest[];
}

const RESULT = /^(ok|not ok) (\d+)(?: ([^#]*[^# ]))?(?: # ?(.*))?$/;

export function parseKtap(text: string): KtapDocument {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  let i = 0;
  const fail = (why: string): never => {
    throw new Error(`KTAP line ${i + 1} ${JSON.stringify(lines[i] ?? '<end>')}: ${why}`);
  };

  function level(indent: string): { plan: number; tests: KtapTest[]; name: string | null } {
    if (lines[i] !== `${indent}KTAP version 1`) fail(`expected "${indent}KTAP version 1"`);
    i++;
    let name: string | null = null;
    while (i < lines.length && lines[i].startsWith(`${indent}# `)) {
      const m = /^# Subtest: (.+)$/.exec(lines[i].slice(indent.length));
      if (m) name = m[1];
      i++;
    }
    const plan = /^1\.\.(\d+)$/.exec((lines[i] ?? '').slice(indent.length));
    if (!plan || !lines[i].startsWith(indent) || lines[i][indent.length] === ' ') fail('expected the plan 1..N');
    i++;
    const tests: KtapTest[] = [];
    let diagnostics: string[] = [];
    let pending: { tests: KtapTest[]; name: string | null } | null = null;
    while (i < lines.length) {
      const line = lines[i];
      if (!line.startsWith(indent)) break;
      const body = line.slice(indent.length);
      if (body.startsWith(`  KTAP version 1`)) {
        if (pending) fail('a subtest block without its result line');
        const sub = level(`${indent}  `);
        if (sub.tests.length !== sub.plan) fail(`subtest planned ${sub.plan}, ran ${sub.tests.length}`);
        pending = sub;
        continue;
      }
      if (body.startsWith(' ')) fail('unexpected indentation');
      if (body.startsWith('# ')) {
        diagnostics.push(body.slice(2));
        i++;
        continue;
      }
      const m = RESULT.exec(body);
      if (!m) fail('not a KTAP line');
      const [, status, number, name = '', rest] = m!;
      if (Number(number) !== tests.length + 1) fail(`expected test number ${tests.length + 1}`);
      const skip = rest !== undefined && /^SKIP\b/.test(rest);
      const test: KtapTest = {
        number: Number(number),
        ok: status === 'ok',
        name,
        directive: skip ? 'SKIP' : null,
        note: skip ? rest!.replace(/^SKIP ?/, '') : (rest ?? ''),
        diagnostics,
        subtests: pending?.tests ?? null,
        subtestName: pending?.name ?? null,
      };
      if (pending && test.ok && pending.tests.some((s) => !s.ok)) fail('a parent whose subtest failed must fail');
      tests.push(test);
      pending = null;
      diagnostics = [];
      i++;
    }
    if (pending) fail('a subtest block without its result line');
    return { plan: Number(plan![1]), tests, name };
  }

  const top = level('');
  if (i !== lines.length) fail('trailing line');
  if (top.tests.length !== top.plan) throw new Error(`KTAP: planned ${top.plan}, ran ${top.tests.length}`);
  return { plan: top.plan, tests: top.tests };
}

/** pass | fail | skip of every leaf test, keyed "SUITE NAME/TEST NAME". */
export function ktapLeaves(doc: KtapDocument): Map<string, 'pass' | 'fail' | 'skip'> {
  const out = new Map<string, 'pass' | 'fail' | 'skip'>();
  for (const suite of doc.tests) {
    for (const t of suite.subtests ?? []) out.set(`${suite.name}/${t.name}`, !t.ok ? 'fail' : t.directive === 'SKIP' ? 'skip' : 'pass');
  }
  return out;
}
