/**
 * The checks `run` and `eval` make before anything starts: every model a run will call names a registered
 * provider, every provider that needs an API key has one, and no base URL has credentials in it. A failure is
 * a usage error (exit code 2) naming the model, where it is used, and what to set; no node has started, so there is no output or trace.
 */
import { SymphonizerError } from '../core/errors.ts';
import type { NodeOverride } from '../chain/types.ts';
import { CredentialsInUrlError, MissingApiKeyError } from '../providers/errors.ts';
import type { ModelClient } from '../providers/model-client.ts';
import type { ProviderRegistry } from '../providers/registry.ts';
import { resolveAnthropicAccess } from '../providers/anthropic/anthropic-provider.ts';
import { resolveOpenAIAccess } from '../providers/openai/openai-provider.ts';
import { CliError } from './errors.ts';

/** The environment the key checks read: the CLI's `io.env`. */
export type PreflightEnv = Readonly<Record<string, string | undefined>>;

/** One way a chain runs: a run's `--model`, or an eval variant's model and overrides. */
export interface PlannedRun {
  /** How this run is named in messages, e.g. `variant "b"`; omitted for a single run. */
  readonly label?: string | undefined;
  readonly model?: string | undefined;
  readonly overrides?: Readonly<Record<string, NodeOverride>> | undefined;
}

/** Options of {@link preflight}. */
export interface PreflightOptions {
  /** The chain; its `models()` gives each node's model (a chain without it is not checked). */
  readonly chain: unknown;
  /** The runs to check. @default [{}] (one run with the chain's own models) */
  readonly runs?: readonly PlannedRun[] | undefined;
  /** The registry the run will call providers through. */
  readonly registry: ProviderRegistry;
  /** The environment to read keys from (see {@link envKeys}). */
  readonly env: PreflightEnv;
  /**
   * Check the keys of `openai` and `anthropic` providers that have no `preflight()` of their own from `env`,
   * as those providers read it. True only for a registry the CLI built from the environment: a chain's own
   * client may have been given its keys in code.
   */
  readonly envKeys: boolean;
  /** Check API keys at all (false when every answer comes from a read-only cache). @default true */
  readonly keys?: boolean | undefined;
}

/**
 * Checks every model the planned runs will call: that its provider is registered, and that a key is there
 * when one is needed (through the provider's own `preflight()`, else, with `envKeys`, from `env`).
 * @throws {CliError} `unknown_provider`, `invalid_model_id`, `missing_api_key` or `credentials_in_url`, naming
 *   the model and where it is used, with what to do in the hint.
 */
export function preflight(options: PreflightOptions): void {
  const used = modelUses(options.chain, options.runs ?? [{}]);
  for (const [id, where] of used) {
    let resolved: ReturnType<ProviderRegistry['resolve']>;
    try {
      resolved = options.registry.resolve(id);
    } catch (error) {
      throw rephrased(error, id, where, options.registry);
    }
    if (options.keys === false) continue;
    const { provider, model } = resolved;
    try {
      // A provider that can check itself knows its own settings; the environment rule is the fallback.
      if (typeof provider.preflight === 'function') provider.preflight(model);
      else if (options.envKeys) checkEnvKey(provider.name, options.env);
    } catch (error) {
      throw rephrased(error, id, where, options.registry);
    }
  }
}

/**
 * The chain's own client (the `client` option of `chain()`), when it has one: an object whose `registry`
 * resolves model ids. Runs and evals then call through it and its registry, custom providers included.
 */
export function clientOf(chain: unknown): ModelClient | undefined {
  const client = (chain as { readonly client?: unknown } | null)?.client;
  const registry = (client as { readonly registry?: unknown } | null | undefined)?.registry;
  return typeof (registry as { resolve?: unknown } | null | undefined)?.resolve === 'function'
    ? (client as ModelClient)
    : undefined;
}

/**
 * Throws when provider `name` (`openai` or `anthropic`, as created from the environment) would refuse its
 * first call: its base URL variable has credentials in it, or it lacks a key (no key variable set, and no base
 * URL variable pointing to another server: a local OpenAI-compatible server needs none). Any other provider
 * passes. The rule is the provider's own, read from `env` instead of `process.env`.
 * @throws {CredentialsInUrlError}
 * @throws {MissingApiKeyError}
 */
export function checkEnvKey(name: string, env: PreflightEnv): void {
  if (name === 'openai') resolveOpenAIAccess({}, name, env);
  else if (name === 'anthropic') resolveAnthropicAccess({}, name, env);
}

/** Each model id the runs call, with where, by run label ('' for a single run), in first-use order. */
function modelUses(chain: unknown, runs: readonly PlannedRun[]): Map<string, Map<string, string[]>> {
  const used = new Map<string, Map<string, string[]>>();
  const models = (chain as { models?: unknown } | null)?.models;
  if (typeof models !== 'function') return used;
  for (const run of runs) {
    const byNode = models.call(chain, { model: run.model, overrides: run.overrides }) as Readonly<
      Record<string, string>
    >;
    for (const [node, id] of Object.entries(byNode)) {
      const byRun = used.get(id) ?? new Map<string, string[]>();
      used.set(id, byRun);
      const label = run.label ?? '';
      byRun.set(label, [...(byRun.get(label) ?? []), node]);
    }
  }
  return used;
}

/** Where a model is used: `node "a"`, `nodes "a", "b"`, `variant "x": node "a"; variant "y": …`. */
function describeUses(byRun: ReadonlyMap<string, readonly string[]>): string {
  const parts = [...byRun].map(([label, nodes]) => {
    const shown = nodes.slice(0, 5).map((n) => JSON.stringify(n));
    if (nodes.length > 5) shown.push(`… (${nodes.length} in all)`);
    const what = `${nodes.length === 1 ? 'node' : 'nodes'} ${shown.join(', ')}`;
    return label === '' ? what : `${label}: ${what}`;
  });
  return parts.length > 3
    ? `${parts.slice(0, 3).join('; ')}; and ${parts.length - 3} more`
    : parts.join('; ');
}

/** A provider error of the pre-flight as a CLI usage error saying which model and where. */
function rephrased(
  error: unknown,
  id: string,
  where: ReadonlyMap<string, readonly string[]>,
  registry: ProviderRegistry,
): unknown {
  if (!SymphonizerError.isInstance(error)) return error;
  const at = describeUses(where);
  switch (error.code) {
    case 'missing_api_key': {
      const envVar = error instanceof MissingApiKeyError ? error.envVar : undefined;
      const provider = id.slice(0, id.indexOf(':'));
      return new CliError(
        'missing_api_key',
        `No API key for provider "${provider}": model ${id} (${at}) needs ${envVar ?? 'one'}.` +
          ' Nothing was run.',
        {
          cause: error,
          hint:
            envVar === undefined
              ? (error.hint ?? 'configure the provider with its key')
              : `set ${envVar} (export ${envVar}=…), or run on another model with --model (sim:demo is offline)`,
        },
      );
    }
    case 'credentials_in_url': {
      const provider = id.slice(0, id.indexOf(':'));
      if (!(error instanceof CredentialsInUrlError)) return error;
      const setting = error.setting === 'baseURL' ? "the provider's baseURL setting" : error.setting;
      return new CliError(
        'credentials_in_url',
        `The base URL ${error.url} of provider "${provider}" (from ${setting}) has credentials in it:` +
          ` model ${id} (${at}) cannot be called. Nothing was run.`,
        {
          cause: error,
          hint: `remove the user:password@ part from ${setting}; the API key belongs in ${error.keyEnvVar} (or the provider's apiKey setting)`,
        },
      );
    }
    case 'unknown_provider':
      return new CliError(
        'unknown_provider',
        `Unknown provider "${id.slice(0, id.indexOf(':'))}" in model ${id} (${at}). Nothing was run.`,
        {
          cause: error,
          hint: `known providers: ${registry.names.join(', ')}; a custom provider is registered on the chain's client (new ModelClient({ registry }))`,
        },
      );
    case 'invalid_model_id':
      return new CliError('invalid_model_id', `Invalid model id ${JSON.stringify(id)} (${at}).`, {
        cause: error,
        hint: error.hint,
      });
    default:
      return error;
  }
}
