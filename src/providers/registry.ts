/**
 * Resolve `provider:model` ids (`openai:gpt-4.1-mini`, `anthropic:claude-sonnet-4-5`, `sim:echo`) to a
 * provider and a bare model id. The simulated provider is always there; the network providers are created
 * only when first used, so no key is read and no SDK client is built before then.
 */
import { createAnthropicProvider } from './anthropic/anthropic-provider.ts';
import type { AnthropicProviderSettings } from './anthropic/anthropic-provider.ts';
import { InvalidModelIdError, UnknownProviderError } from './errors.ts';
import { createOpenAIProvider } from './openai/openai-provider.ts';
import type { OpenAIProviderSettings } from './openai/openai-provider.ts';
import { createSimulatedProvider } from './simulated/simulated-provider.ts';
import type { SimulatedProviderOptions } from './simulated/simulated-provider.ts';
import type { Provider } from './types.ts';

/** A provider and the model id to pass it, as returned by {@link ProviderRegistry.resolve}. */
export interface ResolvedModel {
  readonly provider: Provider;
  /** The model id without its provider prefix, e.g. `gpt-4.1-mini`. */
  readonly model: string;
}

/** Creates a provider on first use. */
export type ProviderFactory = () => Provider;

/** Options of {@link ProviderRegistry}. */
export interface ProviderRegistryOptions {
  /**
   * Options of the built-in simulated provider (registered as `sim` unless `simulated.name` says otherwise).
   * @default {}
   */
  readonly simulated?: SimulatedProviderOptions | undefined;
}

// Provider part: a letter or digit, then letters, digits, `_`, `.` or `-`. The model part is everything after
// the first colon (model ids such as Ollama's `llama3.1:8b` contain colons themselves).
/** How many model ids a registry remembers the resolution of. */
const RESOLVED_KEPT = 256;

const modelIdPattern = /^([A-Za-z0-9][A-Za-z0-9_.-]*):(\S(?:.*\S)?)$/;

/**
 * Named providers, plus `provider:model` id resolution.
 *
 * @example
 * ```ts
 * const registry = createDefaultRegistry();
 * const { provider, model } = registry.resolve('openai:gpt-4.1-mini');
 * await provider.complete({ model, messages: [{ role: 'user', content: 'Hi' }] });
 * ```
 */
export class ProviderRegistry {
  readonly #providers = new Map<string, Provider>();
  // Factories not yet called; an entry moves to #providers on first use.
  readonly #factories = new Map<string, ProviderFactory>();
  /** The last resolutions by model id (every call resolves its id), checked against `#providers` on use. */
  readonly #resolved = new Map<string, ResolvedModel>();

  constructor(options: ProviderRegistryOptions = {}) {
    this.register(createSimulatedProvider(options.simulated));
  }

  /** Register (or replace) a provider under its `name`. Returns the registry for chaining. */
  register(provider: Provider): this {
    this.#factories.delete(provider.name);
    this.#providers.set(provider.name, provider);
    return this;
  }

  /** Register (or replace) a provider that is created by `factory` the first time it is needed. */
  registerLazy(name: string, factory: ProviderFactory): this {
    this.#providers.delete(name);
    this.#factories.set(name, factory);
    return this;
  }

  /** True when a provider (created or lazy) is registered under `name`. */
  has(name: string): boolean {
    return this.#providers.has(name) || this.#factories.has(name);
  }

  /** Names of every registered provider, sorted. */
  get names(): readonly string[] {
    return [...new Set([...this.#providers.keys(), ...this.#factories.keys()])].sort();
  }

  /**
   * The provider registered under `name`, creating it now if it was registered lazily.
   *
   * @throws {UnknownProviderError} listing the registered names.
   */
  get(name: string): Provider {
    const existing = this.#providers.get(name);
    if (existing !== undefined) return existing;
    const factory = this.#factories.get(name);
    if (factory === undefined) throw new UnknownProviderError(name, this.names);
    const provider = factory();
    this.#factories.delete(name);
    this.#providers.set(name, provider);
    return provider;
  }

  /**
   * Split a `provider:model` id and look the provider up.
   *
   * @throws {InvalidModelIdError} when the id is not `provider:model`.
   * @throws {UnknownProviderError} when no provider has that name.
   */
  resolve(modelId: string): ResolvedModel {
    const cached = this.#resolved.get(modelId);
    // Still the provider registered under that name (a provider may have been replaced since).
    if (cached !== undefined && this.#providers.get(cached.provider.name) === cached.provider) return cached;
    const match = modelIdPattern.exec(modelId);
    if (match === null) throw new InvalidModelIdError(modelId);
    const [, providerName = '', model = ''] = match;
    const resolved: ResolvedModel = Object.freeze({ provider: this.get(providerName), model });
    if (resolved.provider.name === providerName) {
      if (this.#resolved.size >= RESOLVED_KEPT) this.#resolved.clear();
      this.#resolved.set(modelId, resolved);
    }
    return resolved;
  }
}

/** Options of {@link createDefaultRegistry}. */
export interface DefaultRegistryOptions extends ProviderRegistryOptions {
  /** Settings of the lazily created `openai` provider. @default {} */
  readonly openai?: OpenAIProviderSettings | undefined;
  /** Settings of the lazily created `anthropic` provider. @default {} */
  readonly anthropic?: AnthropicProviderSettings | undefined;
}

/**
 * A registry with `sim` (offline, always available), and `openai` and `anthropic` created on first use
 * (keys are read from `OPENAI_API_KEY` / `ANTHROPIC_API_KEY` only at their first call).
 */
export function createDefaultRegistry(options: DefaultRegistryOptions = {}): ProviderRegistry {
  return new ProviderRegistry(options)
    .registerLazy(options.openai?.name ?? 'openai', () => createOpenAIProvider(options.openai))
    .registerLazy(options.anthropic?.name ?? 'anthropic', () => createAnthropicProvider(options.anthropic));
}
