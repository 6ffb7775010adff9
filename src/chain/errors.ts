import { SymphonizerError, type SymphonizerErrorOptions } from '../core/errors.ts';
import type { NodeRecord } from '../core/composition.ts';
import type { OutputIssue } from '../providers/structured-output.ts';
import type { UsageTotals } from '../providers/usage.ts';

/** Codes of the errors `symphonizer/chain` raises. */
export type ChainErrorCode =
  | 'invalid_input'
  | 'invalid_chain'
  | 'invalid_messages'
  | 'chain_failed'
  | 'chain_cancelled'
  | 'mcp_unavailable'
  | 'mcp_tool_failed';

/** A chain's input failed its zod schema; `issues` say where. */
export class InputValidationError extends SymphonizerError<ChainErrorCode> {
  /** Name of the chain. */
  readonly chain: string;
  /** The first issues, with paths into the input. */
  readonly issues: readonly OutputIssue[];

  constructor(chain: string, issues: readonly OutputIssue[]) {
    const shown = issues
      .slice(0, 3)
      .map((i) => `${i.path === '' ? '(root)' : `input.${i.path}`}: ${i.message}`)
      .join('; ');
    super('invalid_input', `Input of chain "${chain}" is invalid: ${shown}.`, {
      hint: "pass an input that matches the chain's input schema",
    });
    this.chain = chain;
    this.issues = issues;
  }
}

/** A chain was defined wrongly (unknown dependency, duplicate name, no prompt). */
export class ChainDefinitionError extends SymphonizerError<ChainErrorCode> {
  /** The node concerned, if any. */
  readonly node: string | undefined;

  constructor(message: string, node?: string, options: SymphonizerErrorOptions = {}) {
    super('invalid_chain', message, options);
    this.node = node;
  }
}

/**
 * A node's `messages` function returned something that is not a conversation: not an array, or a message
 * without a known `role`, a string `content` or (for a `tool` message) a `toolCallId`; or the node has no
 * message to send at all. Names the node and the index of the bad message.
 */
export class InvalidMessagesError extends SymphonizerError<ChainErrorCode> {
  /** The node whose messages are bad. */
  readonly node: string;
  /** Index of the bad message in what `messages` returned; `undefined` when the whole value is bad. */
  readonly index: number | undefined;

  constructor(node: string, index: number | undefined, problem: string) {
    super(
      'invalid_messages',
      `Node "${node}": ${index === undefined ? 'messages' : `messages[${index}]`} ${problem}.`,
      {
        hint: "return an array of { role: 'system' | 'user' | 'assistant', content: string } (or { role: 'tool', toolCallId, content }) from the node's messages function",
      },
    );
    this.node = node;
    this.index = index;
  }
}

/** A chain run ended without completing; holds what was done before the end. */
export class ChainRunError extends SymphonizerError<ChainErrorCode> {
  /** `error` (a node failed) or `cancelled` (stopped or aborted). */
  readonly status: 'error' | 'cancelled';
  /** The node that failed, when one did. */
  readonly node: string | undefined;
  /** Outputs of the nodes that completed. */
  readonly outputs: Readonly<Record<string, unknown>>;
  readonly trace: readonly NodeRecord[];
  readonly usage: UsageTotals;

  constructor(init: {
    chain: string;
    status: 'error' | 'cancelled';
    node: string | undefined;
    cause: unknown;
    outputs: Readonly<Record<string, unknown>>;
    trace: readonly NodeRecord[];
    usage: UsageTotals;
  }) {
    const why = init.cause instanceof Error ? init.cause.message : String(init.cause);
    super(
      init.status === 'error' ? 'chain_failed' : 'chain_cancelled',
      init.status === 'error'
        ? `Chain "${init.chain}" failed${init.node === undefined ? '' : ` at node "${init.node}"`}: ${why}`
        : `Chain "${init.chain}" was cancelled${init.cause === undefined ? '' : `: ${why}`}`,
      { cause: init.cause },
    );
    this.status = init.status;
    this.node = init.node;
    this.outputs = init.outputs;
    this.trace = init.trace;
    this.usage = init.usage;
  }
}
