/**
 * Scrub API keys, auth headers and the credentials of URLs out of text before it lands in an error message, a
 * log line or a trace. The adapters run every message they build through {@link redactSecrets}.
 */

/** What a scrubbed secret is replaced with. */
export const REDACTED = '[REDACTED]';

/** What the userinfo (`user:password`) of a URL is replaced with: `http://***@host/`. */
export const REDACTED_USERINFO = '***';

// `scheme://userinfo@`: the userinfo runs up to the last `@` before the authority ends (`/`, `?`, `#`, `\`,
// whitespace, a double quote, a backtick or an angle bracket), so an unencoded `@` or `(` in a password goes
// with the rest, as the WHATWG URL parser reads it. Erring this way can only redact more. `***@` is left alone.
const urlUserinfo = /\b([a-z][a-z0-9+.-]*:\/\/)(?!\*\*\*@)[^\s/?#\\"`<>]*@/gi;

/**
 * Return `text` with the userinfo of every URL in it replaced by `***`: `https://user:pw@host/v1` becomes
 * `https://***@host/v1`. A user name alone (`https://token@host`) is removed too. Only `scheme://` URLs are
 * touched, so e-mail addresses are left as they are.
 *
 * @example
 * ```ts
 * redactUrlCredentials('fetch http://me:pw@127.0.0.1:8080/v1 failed'); // 'fetch http://***@127.0.0.1:8080/v1 failed'
 * ```
 */
export function redactUrlCredentials(text: string): string {
  return text.replace(urlUserinfo, `$1${REDACTED_USERINFO}@`);
}

/**
 * True when `url` carries credentials: a user name or a password, as the WHATWG URL parser reads it, or, for a
 * string it cannot parse, anything {@link redactUrlCredentials} would remove.
 */
export function hasUrlCredentials(url: string): boolean {
  try {
    const parsed = new URL(url);
    return parsed.username !== '' || parsed.password !== '';
  } catch {
    return redactUrlCredentials(url) !== url;
  }
}

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
 * Shapes scrubbed: `sk-…` / `sk-proj-…` (OpenAI), `sk-ant-…` (Anthropic), `Bearer …`, the values of
 * `Authorization`, `x-api-key`, `api-key` and `api_key` header- or field-like pairs, and the userinfo of every
 * `scheme://user:password@` URL ({@link redactUrlCredentials}: it becomes `***@`).
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
  // URLs first: whatever follows can only remove more, so no explicit secret is rebuilt by a later step.
  let result = redactUrlCredentials(text);
  const explicit = [...new Set(secrets.filter((secret) => secret.length > 0))].sort(
    (a, b) => b.length - a.length,
  );
  for (const secret of explicit) result = result.split(secret).join(REDACTED);
  for (const [pattern, replacement] of patterns) result = result.replace(pattern, replacement);
  return result;
}
