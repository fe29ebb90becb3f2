// Quoting words for /bin/sh: the guest's command script and the repro commands reports print.

/** A word in single quotes, whatever it holds. */
export function singleQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** A word as a person would type it: bare when the shell leaves it alone, else single-quoted. */
export function shellWord(word: string): string {
  return /^[A-Za-z0-9_./:+=-]+$/.test(word) ? word : singleQuote(word);
}
