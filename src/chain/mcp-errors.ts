/**
 * Errors of MCP tools: a server that cannot be reached (it fails the agent's node), and a tool call that did
 * not give a usable result (it goes back to the model as the tool's error, like a zod tool that threw).
 * Neither carries the server's environment values or HTTP header values.
 */
import { SymphonizerError, type SymphonizerErrorOptions } from '../core/errors.ts';
import type { ChainErrorCode } from './errors.ts';

/**
 * An MCP server could not be reached: it would not start or connect, or it dropped and the one reconnect
 * failed (or it dropped again). Code `mcp_unavailable`. Raised from a tool call or the tool listing of an
 * agent, it fails the agent's node (the model cannot fix a server that is down).
 */
export class McpUnavailableError extends SymphonizerError<ChainErrorCode> {
  /** The server's name (`mcpTools(…, { name })`). */
  readonly server: string;
  /** The tool being called, when it was a call. */
  readonly tool: string | undefined;

  constructor(
    server: string,
    tool: string | undefined,
    problem: string,
    options: SymphonizerErrorOptions = {},
  ) {
    super(
      'mcp_unavailable',
      `MCP server "${server}"${tool === undefined ? '' : ` (tool "${tool}")`}: ${problem}.`,
      options,
    );
    this.server = server;
    this.tool = tool;
  }
}

/** Why an MCP tool call gave no usable result. */
export type McpToolFailure = 'timeout' | 'tool_error' | 'invalid_result' | 'protocol_error';

/**
 * An MCP tool call gave no usable result: no answer within `timeoutMs` (`reason: 'timeout'`), a result
 * flagged `isError` (`'tool_error'`), a result that is not a valid `CallToolResult` (`'invalid_result'`), or
 * a JSON-RPC error (`'protocol_error'`). Code `mcp_tool_failed`. Inside an agent its message goes back to
 * the model as the tool's result (`ok: false`); the connection stays open.
 */
export class McpToolError extends SymphonizerError<ChainErrorCode> {
  /** The server's name. */
  readonly server: string;
  /** The tool's name on the server. */
  readonly tool: string;
  readonly reason: McpToolFailure;

  constructor(
    server: string,
    tool: string,
    reason: McpToolFailure,
    problem: string,
    options: SymphonizerErrorOptions = {},
  ) {
    super('mcp_tool_failed', `Tool "${tool}" of MCP server "${server}" ${problem}`, options);
    this.server = server;
    this.tool = tool;
    this.reason = reason;
  }
}
