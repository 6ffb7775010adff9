/**
 * Prompts: Handlebars templates for model calls, with HTML escaping off (prompts are not HTML) and strict
 * variables (a missing variable is an error naming the template, the variable and the node).
 *
 * - {@link PromptTemplate}: one template with an optional system part and a user part, compiled once.
 * - {@link TemplateLoader}: templates by name from `prompts/*.hbs`, partials from `prompts/partials/*.hbs`,
 *   looked up in the user's project first (the chain's `templates` option, `SYMPHONIZER_PROMPTS`,
 *   `./prompts`) and in the package's own prompts last.
 * - {@link renderTemplate}: load and render through {@link defaultTemplateLoader} in one call.
 *
 * A file's parts are marked by lines holding only `{{!-- system --}}`, `{{!-- user --}}`,
 * `{{!-- assistant --}}` or `{{!-- history --}}`; see
 * {@link PromptTemplate} for the format, the strictness rules and the helpers.
 * @packageDocumentation
 */

export {
  PromptTemplate,
  type PromptTemplateOptions,
  type RenderOptions,
  type RenderedPrompt,
  type RenderedTurn,
} from './template.ts';
export { PromptEnvironment, type PromptEnvironmentOptions } from './environment.ts';
export {
  TemplateLoader,
  defaultTemplateLoader,
  renderTemplate,
  type RenderTemplateOptions,
  type TemplateLoaderOptions,
} from './template-loader.ts';
export { PROMPTS_ENV_VAR, type TemplateDirReason, type TemplateSearchDir } from './search-path.ts';
export {
  PartialNotFoundError,
  TemplateNotFoundError,
  TemplateRenderError,
  TemplateSyntaxError,
  TemplateVariableError,
  type PartialNotFoundErrorInit,
  type SearchedTemplatePlace,
  type TemplateNotFoundErrorInit,
  type TemplateRenderErrorInit,
  type TemplateSyntaxErrorInit,
  type TemplateVariableErrorInit,
  type PromptErrorCode,
} from './errors.ts';
