/** How the built-in providers read their settings from the environment. Package-internal. */

/** The environment a provider reads: `process.env`, or a stand-in (the CLI passes its own). */
export type ProviderEnv = Readonly<Record<string, string | undefined>>;

/** `env[name]` trimmed; unset and empty are both `undefined`. */
export function readEnv(name: string, env: ProviderEnv = process.env): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}
