// A generated C reproducer, compiled with cc and run on this host's page cache (tmpfs,
// prepared by its own setup lines), shows what daxpin recorded for the same case:
// whether the op returned before the pin's release, and whose bytes the views hold.
// Needs root (the setup mounts a tmpfs) and cc.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { readRun } from '../../lib/report/runfile';
import { classHead, outcomeClass } from '../../lib/verdict';
import { runCli, testDir } from '../helpers/cli';

const CASES = ['vmsplice.truncate-shrink.pte-shared', 'vmsplice.punch-hole.pte-shared-unmapped', 'none.truncate-zero.pte-shared'];

/** "op: … BEFORE the release" / "after the release" and "views: buffer=… pipe=… …" from the reproducer's output. */
export function parseReproOutput(text: string): { beforeRelease: boolean | null; views: Record<string, string> } {
  const op = /^op: .*$/m.exec(text)?.[0] ?? '';
  const views = Object.fromEntries([...(/^views: (.*)$/m.exec(text)?.[1] ?? '').matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1], m[2]]));
  return { beforeRelease: /BEFORE the release/.test(op) ? true : /after the release/.test(op) ? false : null, views };
}

t.test('C reproducers on tmpfs agree with daxpin', async (t) => {
  const tmp = testDir(t, 'daxpin-repro-');
  const out = path.join(tmp, 'run.jsonl');
  const r = await runCli(['run', '--scratch', '--config', 'tmpfs', '--cases', CASES.join(','), '--out', out], { TMPDIR: tmp });
  t.equal(r.code, 0, r.stderr.split('\n').slice(-3).join(' | '));
  const run = readRun(out);
  for (const id of CASES) {
    const rec = run.cases.find((c) => c.caseId === id);
    if (!rec) {
      t.fail(`daxpin recorded no ${id}`);
      continue;
    }
    const dir = path.join(tmp, id);
    const g = await runCli(['repro', id, '--config', 'tmpfs', '--c', '--out', dir]);
    t.equal(g.code, 0, g.stderr);
    const mnt = path.join(tmp, `${id}.mnt`);
    const text = execFileSync('sh', [path.join(dir, 'setup.sh'), 'none'], { env: { ...process.env, MNT: mnt }, encoding: 'utf8', timeout: 60_000 });
    t.comment(`${id}: daxpin ${outcomeClass(rec)}; repro: ${text.trim().split('\n').join(' | ')}`);
    const seen = parseReproOutput(text);
    const head = classHead(outcomeClass(rec));
    t.equal(seen.beforeRelease, head === 'ok' || head === 'op-refused', `${id}: the op returned before the release in both`);
    if (rec.views.pipe !== 'n/a') t.equal(seen.views.pipe, rec.views.pipe, `${id}: the pipe holds the same bytes`);
    t.equal(seen.views.canary === 'foreign', rec.views.canary === 'foreign', `${id}: foreign bytes in a canary in both or neither`);
    t.notOk(fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(mnt), 'the setup lines unmounted their tmpfs');
  }
});
