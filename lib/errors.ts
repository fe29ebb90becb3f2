// The one error type for everything the person running daxpin must fix (bad input, a
// missing tool, a device daxpin must not touch): one line, exit 2. The message carries
// no `daxpin:` prefix; the CLI adds it once when it prints. `code` lets callers branch
// without parsing text.

export class DaxpinError extends Error {
  readonly exitCode = 2;

  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message.replace(/^(daxpin: )+/, ''));
    this.name = 'DaxpinError';
  }
}

/** An error's message, for quoting inside another message. */
export function reason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/^(daxpin: )+/, '');
}
