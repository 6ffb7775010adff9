/**
 * Errors of the `symphonizer` command. Every one of them is a usage error: the command exits with code 2.
 */
import { SymphonizerError, type SymphonizerErrorOptions } from '../core/errors.ts';

/** Codes of {@link CliError}. */
export type CliErrorCode =
  | 'invalid_argument'
  | 'module_not_found'
  | 'module_load_failed'
  | 'no_chain'
  | 'input_file_not_found'
  | 'missing_input'
  | 'invalid_json'
  | 'dataset_not_found'
  | 'no_scorers'
  | 'no_variants'
  | 'store_not_found'
  | 'unknown_run'
  | 'unknown_scorer'
  | 'unknown_variant'
  // the pre-flight of run and eval (src/cli/preflight.ts), with the providers' codes
  | 'unknown_provider'
  | 'invalid_model_id'
  | 'missing_api_key'
  | 'credentials_in_url';

/**
 * Codes of the errors the `eval` command ends with when a batch stopped before every row was evaluated
 * (exit code 1, not a usage error): the rows finished are stored, the hint says how to go on.
 */
export type CliRunErrorCode = 'unread_rows' | 'eval_interrupted' | 'cost_ceiling' | 'cost_estimate';

/** Options of {@link CliError}. */
export interface CliErrorOptions extends SymphonizerErrorOptions {
  /** Extra lines printed under the error line (a source excerpt with a caret, a list of exports). */
  readonly details?: readonly string[] | undefined;
}

/** A usage error of the command line: bad arguments, a module that is missing or has no chain, bad JSON input. */
export class CliError extends SymphonizerError<CliErrorCode> {
  /** Extra lines printed under the error line. */
  readonly details: readonly string[];

  constructor(code: CliErrorCode, message: string, options: CliErrorOptions = {}) {
    super(code, message, options);
    this.details = options.details ?? [];
  }
}
