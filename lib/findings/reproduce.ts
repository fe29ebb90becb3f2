// The one-line daxpin command that reproduces one case the way its run was made.

import { shellWord, singleQuote } from '../host/shell';
import type { RunRecord } from '../outcome';

/**
 * `daxpin run --dir …` for native runs (the directory from the run's own command
 * line when it has one), `daxpin vm --kernel <release>` for vm runs.
 */
export function reproCommand(run: RunRecord, config: string, caseId: string): string {
  const head =
    run.runner === 'vm' ? ['daxpin', 'vm', '--kernel', run.kernel] : ['daxpin', 'run', '--dir', dirArg(run.argv) ?? '<mnt>'];
  // The case id is always quoted: --cases takes globs, and a pasted id should stay one.
  return [...[...head, '--config', config, '--cases'].map(shellQuote), singleQuote(caseId)].join(' ');
}

function dirArg(argv: string[]): string | undefined {
  const i = argv.indexOf('--dir');
  if (i !== -1 && i + 1 < argv.length) return argv[i + 1];
  return argv.find((a) => a.startsWith('--dir='))?.slice('--dir='.length);
}

function shellQuote(word: string): string {
  return word === '<mnt>' ? word : shellWord(word);
}
