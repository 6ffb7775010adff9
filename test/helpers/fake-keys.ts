/**
 * Fake API keys for tests, shaped like real ones (so redaction is exercised) but assembled at run time, so
 * no key-shaped literal sits in the repository for secret scanners to flag: `fakeKey('ant', 'x')` is
 * `sk-ant-x`. None of them is, or was, a real key.
 */
export function fakeKey(...parts: readonly string[]): string {
  return ['sk', ...parts].join('-');
}
