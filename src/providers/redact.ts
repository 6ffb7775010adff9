/**
 * Scrub API keys and auth headers out of text before it lands in an error message, a log line or a trace.
 * The adapters run every message they build through {@link redactSecrets}.
 */

/** What a scrubbed secret is replaced with. */
export const REDACTED = '[REDACTED]';

// Order matters: header-shaped secrets first (so `Authorization: Bearer x` loses its whole value), then bare
// bearer tokens, then key shapes anywhere in the text.
const patterns: readonly (readonly [RegExp, string])[] = [
  [
    /\b(authorization|proxy-authorization)(["']?\s*[:=]\s*["']?)(?:(?:bearer|basic|token)\s+)?[^\s"',;&}\]]+/gi,
    `$1$2${REDACTED}`,
  ],
  [
    /\b(x-api-key|api-key|api_key|apikey|x-goog-api-key)(["']?\s*[:=]\s*["']?)[^\s"',;&}\]]+/gi,
    `$1$2${REDACTED}`,
  ],
  [/\bBearer\s+(?!\[REDACTED\])[^\s"',;&}\]]+/gi, `Bearer ${REDACTED}`],
  [/\bsk-ant-[A-Za-z0-9_*.-]+/g, `sk-ant-${REDACTED}`],
  // `sk-…` and `sk-proj-…` (OpenAI). Requires a few characters so words like "sk-learn" survive.
  [/\bsk-(?!ant-\[REDACTED\])[A-Za-z0-9_*.-]{8,}/g, `sk-${REDACTED}`],
];

/**
 * Return `text` with every known secret shape and every explicit secret replaced by `[REDACTED]`.
 *
 * Shapes scrubbed: `sk-…` / `sk-proj-…` (OpenAI), `sk-ant-…` (Anthropic), `Bearer …`, and the values of
 * `Authorization`, `x-api-key`, `api-key` and `api_key` header- or field-like pairs.
 *
 * @param text - the text to scrub.
 * @param secrets - exact strings to remove wherever they occur (e.g. the API key in use). Empty strings are
 *   ignored; longer secrets are replaced first so a secret containing another is removed whole.
 * @example
 * ```ts
 * redactSecrets('401: Incorrect API key provided: sk-abc123***wxyz'); // '401: Incorrect API key provided: sk-[REDACTED]'
 * ```
 */
export function redactSecrets(text: string, secrets: readonly string[] = []): string {
  let result = text;
  const explicit = [...new Set(secrets.filter((secret) => secret.length > 0))].sort(
    (a, b) => b.length - a.length,
  );
  for (const secret of explicit) result = result.split(secret).join(REDACTED);
  for (const [pattern, replacement] of patterns) result = result.replace(pattern, replacement);
  return result;
}
