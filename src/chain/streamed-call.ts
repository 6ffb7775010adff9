/**
 * One streamed attempt of a node's model call: text deltas reported as they come (a text node's tokens),
 * or, for a call with an output schema, the partial value parsed from the JSON so far; then the result,
 * validated against the schema (an invalid one is re-asked with feedback, as a non-streamed call is).
 */
import { TryAgainError } from '../core/errors.ts';
import type { RunContext } from '../core/node-runner.ts';
import type { CallEventSink } from '../providers/call-events.ts';
import type { CallRetries } from '../providers/call-policy.ts';
import type { CallResult, CallSpec } from '../providers/call.ts';
import type { ModelClient } from '../providers/model-client.ts';
import { OutputValidationError, parseStructuredOutput } from '../providers/structured-output.ts';
import type { ToolCall } from '../providers/types.ts';
import type { UsageLabels } from '../providers/usage.ts';
import { ChainDefinitionError } from './errors.ts';
import { PartialJsonParser } from './partial-json.ts';

/** How a streamed call reports what it receives. */
export interface StreamedCallOptions {
  readonly client: ModelClient;
  readonly labels: UsageLabels & { readonly nodeKey: string };
  readonly timeoutMs: number | undefined;
  readonly retryAfterText: boolean;
  readonly onEvent: CallEventSink;
  /** Each text delta of a call without a schema. */
  readonly onText: (text: string) => void;
  /** Each new partial value of a call with a schema. */
  readonly onPartial: (partial: unknown) => void;
  /** A re-ask after the streamed output failed validation (the partials streamed are void). */
  readonly onRepair: (retry: { readonly attempt: number; readonly reason: string }) => void;
}

/**
 * Streams one attempt of `spec` (whose retry state is `retries`) in a node's attempt `context`.
 * @throws {TryAgainError} when the attempt should be retried (transport failure, or an invalid output
 *   while the repair budget lasts).
 * @throws the attempt's error once retrying stops.
 */
export async function streamedCall(
  spec: CallSpec,
  retries: CallRetries,
  context: RunContext,
  options: StreamedCallOptions,
): Promise<CallResult> {
  const { client, labels } = options;
  const feedback = retries.feedback;
  const sent: CallSpec =
    feedback === undefined || spec.schema === undefined
      ? spec
      : {
          ...spec,
          prompt: undefined,
          messages: [...(spec.messages ?? [{ role: 'user', content: spec.prompt ?? '' }]), ...feedback],
        };
  const parser = spec.schema === undefined ? undefined : new PartialJsonParser();
  let text = '';
  const toolCalls: ToolCall[] = [];
  const stream = client.streamAttempt(sent, retries, {
    signal: context.signal,
    attempt: context.attempt,
    labels,
    timeoutMs: options.timeoutMs,
    retryAfterText: options.retryAfterText,
    onEvent: options.onEvent,
  });
  for await (const event of stream) {
    if (event.type === 'text-delta') {
      text += event.text;
      if (parser === undefined) options.onText(event.text);
      else {
        const partial = parser.push(event.text);
        if (partial !== undefined) options.onPartial(partial);
      }
    } else if (event.type === 'tool-call') toolCalls.push(event.toolCall);
    else {
      const response = event.response;
      const full = response.text === '' ? text : response.text;
      let output: unknown = full;
      if (spec.schema !== undefined) {
        const parsed = parseStructuredOutput(spec.schema, full, response.json);
        if (!parsed.ok) {
          const error = new OutputValidationError({
            kind: parsed.kind,
            rawText: full,
            issues: parsed.issues,
            modelId: spec.model,
            nodeKey: labels.nodeKey,
            cause: parsed.cause,
          });
          const decision = retries.decide(error);
          if (!decision.retry) throw retries.failure(error, decision);
          options.onRepair({ attempt: context.attempt, reason: decision.reason });
          throw new TryAgainError(`Retrying: ${decision.reason}.`, {
            delayMs: decision.delayMs,
            cause: error,
          });
        }
        output = parsed.value;
      }
      return {
        output,
        text: full,
        modelId: spec.model,
        usage: response.usage,
        costUsd: client.prices.costOf(spec.model, response.usage).costUsd,
        attempt: context.attempt,
        simulated: response.simulated === true,
        requestId: response.requestId,
        response:
          response.toolCalls.length === 0 && toolCalls.length > 0 ? { ...response, toolCalls } : response,
      };
    }
  }
  throw new ChainDefinitionError(
    `The stream of node "${labels.nodeKey}" ended without a finish event.`,
    labels.nodeKey,
  );
}
