/**
 * Tools of a Model Context Protocol server for agent nodes: {@link mcpTools} names a server (a command
 * spoken to over stdio, or a Streamable HTTP URL) and gives a {@link McpTools} set that an agent's `tools`
 * take next to zod tools. The `@modelcontextprotocol/sdk` peer is imported on first use only; the set holds
 * one connection to its server, opened when an agent first lists its tools, shared by every node and run
 * that uses the set, and closed by `close()` (or, for a stdio server, when the process exits).
 */
import {
  InvalidOptionError,
  MissingPeerDependencyError,
  SymphonizerError,
  errorMessage,
} from '../core/errors.ts';
import { z } from 'zod';
import { McpToolError, McpUnavailableError } from './mcp-errors.ts';
import type { Tool, ToolSource } from './tool.ts';

/** An MCP server run as a child process, spoken to over its stdin and stdout. */
export interface McpStdioServer {
  /** The executable, e.g. `npx` or an absolute path. */
  readonly command: string;
  /** Its arguments. @default [] */
  readonly args?: readonly string[] | undefined;
  /**
   * Variables set for the server, over the few the SDK passes on by default (`PATH`, `HOME`, …: not the
   * whole environment). Their values never appear in errors.
   */
  readonly env?: Readonly<Record<string, string>> | undefined;
  /** Working directory of the server. @default this process's */
  readonly cwd?: string | undefined;
  /** What becomes of the server's stderr. @default 'inherit' */
  readonly stderr?: 'inherit' | 'ignore' | undefined;
}

/** An MCP server over Streamable HTTP. */
export interface McpHttpServer {
  /** The endpoint, e.g. `http://127.0.0.1:3001/mcp`. A `user:password@` part is refused. */
  readonly url: string | URL;
  /** Headers sent with every request (e.g. `Authorization`); their values never appear in errors. */
  readonly headers?: Readonly<Record<string, string>> | undefined;
}

/** Where an MCP server is: a command (stdio) or a URL (Streamable HTTP). */
export type McpServer = McpStdioServer | McpHttpServer;

/** What {@link McpToolsOptions.filter} sees of each tool the server lists. */
export interface McpToolInfo {
  /** The name on the server. */
  readonly name: string;
  readonly description: string;
}

/** Options of {@link mcpTools}. */
export interface McpToolsOptions {
  /**
   * The server's name in errors, in the agent's settings (`<name>:*`) and in graphs.
   * @default the command's file name, or the URL's host
   */
  readonly name?: string | undefined;
  /** Only these tools (names on the server); a name the server does not list fails the listing. */
  readonly include?: readonly string[] | undefined;
  /** Only the tools for which this returns true (after `include`). */
  readonly filter?: ((tool: McpToolInfo) => boolean) | undefined;
  /**
   * Longest wait, in milliseconds, for each tool call's result, and for connecting and listing. A call
   * that takes longer is cancelled on the server and its error goes back to the model.
   * @default 60000
   */
  readonly timeoutMs?: number | undefined;
}

/** The parts of the SDK this module uses, typed loosely so that nothing here imports it statically. */
interface SdkClient {
  connect(transport: unknown, options?: { timeout?: number }): Promise<void>;
  close(): Promise<void>;
  listTools(
    params?: { cursor?: string },
    options?: { timeout?: number; signal?: AbortSignal },
  ): Promise<{ tools: SdkTool[]; nextCursor?: string | undefined }>;
  callTool(
    params: { name: string; arguments?: Record<string, unknown> },
    resultSchema?: undefined,
    options?: { timeout?: number; signal?: AbortSignal },
  ): Promise<Record<string, unknown>>;
  setNotificationHandler(schema: unknown, handler: () => void): void;
  onclose?: (() => void) | undefined;
}
interface SdkTool {
  name: string;
  title?: string | undefined;
  description?: string | undefined;
  inputSchema: Record<string, unknown>;
}
interface Sdk {
  Client: new (info: { name: string; version: string }, options: { capabilities: object }) => SdkClient;
  StdioClientTransport: new (params: {
    command: string;
    args?: string[];
    env?: Record<string, string>;
    cwd?: string;
    stderr?: 'inherit' | 'ignore';
  }) => { readonly pid: number | null };
  StreamableHTTPClientTransport: new (
    url: URL,
    options: { requestInit?: { headers?: Record<string, string> } },
  ) => unknown;
  ToolListChangedNotificationSchema: unknown;
}

let sdk: Promise<Sdk> | undefined;

/** The SDK's client parts, imported on first use; a missing peer is a {@link MissingPeerDependencyError}. */
function loadSdk(): Promise<Sdk> {
  const pkg = '@modelcontextprotocol/sdk';
  sdk ??= Promise.all([
    import('@modelcontextprotocol/sdk/client/index.js'),
    import('@modelcontextprotocol/sdk/client/stdio.js'),
    import('@modelcontextprotocol/sdk/client/streamableHttp.js'),
    import('@modelcontextprotocol/sdk/types.js'),
  ]).then(
    ([client, stdio, http, types]) => ({
      Client: client.Client,
      StdioClientTransport: stdio.StdioClientTransport,
      StreamableHTTPClientTransport: http.StreamableHTTPClientTransport,
      ToolListChangedNotificationSchema: types.ToolListChangedNotificationSchema,
    }),
    (error: unknown) => {
      sdk = undefined;
      throw new MissingPeerDependencyError(pkg, 'mcpTools()', error);
    },
  );
  return sdk;
}

/** One live connection to the server. */
interface Connection {
  readonly client: SdkClient;
  /** The stdio server's process id, to end it when this process exits. */
  pid: number | null;
  /** True once the transport closed (the server exited or the stream ended). */
  closed: boolean;
  /** Makes a stdio server's child hold the event loop again, for closing. */
  hold?: (() => void) | undefined;
}

/** Sets with an open stdio connection: their servers are ended when this process exits. */
const open = new Set<McpTools>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const set of open) set.killOnExit();
  });
}

const defaultTimeoutMs = 60_000;
const toolName = /^[a-zA-Z0-9_-]{1,64}$/;

/**
 * The tools of one MCP server, for agent nodes (`tools: [mcpTools(…), myZodTool]`). Holds at most one
 * connection to the server, opened on first use (the first agent turn that lists tools), shared by every
 * agent node and run that uses this set. The tool list is fetched once and kept until the server sends
 * `notifications/tools/list_changed`; the next turn then lists again. A connection that drops is opened
 * again once for the call that found it dropped (a call in flight when the server died is sent again); if
 * that fails too, the call fails with a {@link McpUnavailableError} naming the server, which fails the node.
 * {@link McpTools.close} ends the connection. An idle stdio connection does not keep the process alive (the
 * server is sent SIGTERM when the process exits); an open Streamable HTTP one does, until `close()`.
 */
export class McpTools implements ToolSource {
  readonly kind = 'tool-source';
  readonly name: string;
  readonly fingerprint: string;
  readonly #server: McpServer;
  readonly #include: readonly string[] | undefined;
  readonly #filter: ((tool: McpToolInfo) => boolean) | undefined;
  readonly #timeoutMs: number;
  /** Values that must never appear in an error: env values and header values. */
  readonly #secrets: readonly string[];
  #connection: Promise<Connection> | undefined;
  #live: Connection | undefined;
  #tools: readonly Tool[] | undefined;
  #listing: Promise<readonly Tool[]> | undefined;
  /** Bumped by each list-changed notification: a listing begun before one is not cached. */
  #generation = 0;
  #opened = 0;
  #closed = false;

  /** @internal Use {@link mcpTools}. */
  constructor(server: McpServer, options: McpToolsOptions = {}) {
    this.#server = server;
    this.#include = options.include;
    this.#filter = options.filter;
    this.#timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
    const values = 'url' in server ? Object.values(server.headers ?? {}) : Object.values(server.env ?? {});
    this.#secrets = values.filter((v) => v.length >= 3).sort((a, b) => b.length - a.length);
    this.name = options.name ?? defaultName(server);
    this.fingerprint = JSON.stringify({
      mcp: this.name,
      server:
        'url' in server
          ? { url: publicUrl(server.url), headers: Object.keys(server.headers ?? {}).sort() }
          : { command: server.command, args: server.args ?? [], env: Object.keys(server.env ?? {}).sort() },
      include: this.#include ?? null,
      filter: this.#filter === undefined ? null : String(this.#filter),
    });
  }

  /** How many connections this set has opened so far (1 while nothing dropped). */
  get connectionsOpened(): number {
    return this.#opened;
  }

  /** True while a connection is open. */
  get connected(): boolean {
    return this.#live !== undefined && !this.#live.closed;
  }

  /**
   * The server's tools (after `include` and `filter`) as agent tools, listing them when the cached list is
   * stale. Each tool's `input` validates arguments against the server's JSON Schema (its `parameters`).
   * @throws {McpUnavailableError} when the server cannot be reached.
   * @throws {InvalidOptionError} when `include` names a tool the server does not list.
   * @throws {MissingPeerDependencyError} when `@modelcontextprotocol/sdk` is not installed.
   */
  tools(signal?: AbortSignal): Promise<readonly Tool[]> {
    if (this.#closed) {
      return Promise.reject(new McpUnavailableError(this.name, undefined, 'the tool set was closed'));
    }
    if (this.#tools !== undefined) return Promise.resolve(this.#tools);
    if (this.#listing === undefined) {
      const generation = this.#generation;
      const listing = this.#withConnection(undefined, (c) => this.#list(c)).then(
        (tools) => {
          if (this.#generation === generation) this.#tools = tools;
          return tools;
        },
        (error: unknown) => {
          if (SymphonizerError.isInstance(error)) throw error;
          throw new McpUnavailableError(
            this.name,
            undefined,
            `could not list its tools: ${this.#scrub(errorMessage(error))}`,
            { cause: this.#scrubbedCause(error) },
          );
        },
      );
      this.#listing = listing;
      void listing.then(
        () => {
          this.#settleListing(listing);
        },
        () => {
          this.#settleListing(listing);
        },
      );
    }
    const listing = this.#listing;
    if (signal === undefined) return listing;
    return new Promise((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason as Error);
        return;
      }
      const onAbort = (): void => {
        reject(signal.reason as Error);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      listing.then(resolve, reject).finally(() => {
        signal.removeEventListener('abort', onAbort);
      });
    });
  }

  /**
   * Calls a tool by its name on the server, outside an agent; resolves to what an agent's tool returns
   * (the text, or the structured content).
   * @throws {McpToolError} when the call gives no usable result (timeout, `isError`, bad result).
   * @throws {McpUnavailableError} when the server cannot be reached.
   */
  call(tool: string, args: Record<string, unknown>, signal?: AbortSignal): Promise<unknown> {
    return this.#withConnection(tool, (c) => this.#call(c, tool, args, signal), signal);
  }

  /** Closes the connection (ending a stdio server). Later use fails with `mcp_unavailable`; idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#tools = undefined;
    open.delete(this);
    const pending = this.#connection;
    this.#connection = undefined;
    this.#live = undefined;
    if (pending === undefined) return;
    try {
      const connection = await pending;
      connection.closed = true;
      connection.hold?.();
      await connection.client.close();
    } catch {
      // A connection that never opened has nothing to close.
    }
  }

  /** @internal Ends a stdio server synchronously (from the process's `exit` handler). */
  killOnExit(): void {
    const pid = this.#live?.pid;
    if (pid === null || pid === undefined) return;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // Already gone.
    }
  }

  #settleListing(listing: Promise<readonly Tool[]>): void {
    if (this.#listing === listing) this.#listing = undefined;
  }

  /** Runs `work` on a live connection, reconnecting once when the connection is (or turns out) dropped. */
  async #withConnection<T>(
    tool: string | undefined,
    work: (connection: Connection) => Promise<T>,
    signal?: AbortSignal,
  ): Promise<T> {
    let reconnected = false;
    for (;;) {
      if (this.#closed) throw new McpUnavailableError(this.name, tool, 'the tool set was closed');
      const known = this.#live;
      if (known?.closed === true) {
        this.#drop(known);
        if (reconnected) throw this.#droppedError(tool);
        reconnected = true;
      }
      let connection: Connection;
      try {
        connection = await this.#connect();
      } catch (error) {
        if (MissingPeerDependencyError.isInstance(error)) throw error;
        throw new McpUnavailableError(
          this.name,
          tool,
          `${reconnected ? 'could not reconnect' : 'could not connect'}: ${this.#scrub(errorMessage(error))}`,
          { cause: this.#scrubbedCause(error), hint: this.#hint() },
        );
      }
      try {
        return await work(connection);
      } catch (error) {
        if (signal?.aborted === true) throw error;
        if (connection.closed || isConnectionClosed(error)) {
          this.#drop(connection);
          if (reconnected) throw this.#droppedError(tool);
          reconnected = true;
          continue;
        }
        throw error;
      }
    }
  }

  #droppedError(tool: string | undefined): McpUnavailableError {
    return new McpUnavailableError(this.name, tool, 'the connection dropped, and again after one reconnect', {
      hint: this.#hint(),
    });
  }

  #hint(): string {
    return 'url' in this.#server
      ? `check that the server at ${publicUrl(this.#server.url)} is up`
      : `check that "${this.#server.command}" starts an MCP server on stdio`;
  }

  /** Forgets a dropped connection (its cached tools stay: they are the same server's). */
  #drop(connection: Connection): void {
    connection.closed = true;
    if (this.#live === connection) {
      this.#live = undefined;
      this.#connection = undefined;
      open.delete(this);
    }
    connection.client.close().catch(() => undefined);
  }

  #connect(): Promise<Connection> {
    this.#connection ??= this.#open().catch((error: unknown) => {
      this.#connection = undefined;
      throw error;
    });
    return this.#connection;
  }

  async #open(): Promise<Connection> {
    const mcp = await loadSdk();
    const server = this.#server;
    const client = new mcp.Client({ name: 'symphonizer', version: '0.1.0' }, { capabilities: {} });
    let transport: unknown;
    let stdio: { readonly pid: number | null } | undefined;
    if ('url' in server) {
      const headers = server.headers === undefined ? undefined : { ...server.headers };
      transport = new mcp.StreamableHTTPClientTransport(new URL(server.url), {
        ...(headers === undefined ? {} : { requestInit: { headers } }),
      });
    } else {
      stdio = new mcp.StdioClientTransport({
        command: server.command,
        args: [...(server.args ?? [])],
        ...(server.env === undefined ? {} : { env: { ...server.env } }),
        ...(server.cwd === undefined ? {} : { cwd: server.cwd }),
        stderr: server.stderr ?? 'inherit',
      });
      transport = stdio;
    }
    const connection: Connection = { client, pid: null, closed: false };
    client.onclose = () => {
      connection.closed = true;
    };
    client.setNotificationHandler(mcp.ToolListChangedNotificationSchema, () => {
      this.#generation += 1;
      this.#tools = undefined;
      this.#listing = undefined;
    });
    this.#opened += 1;
    try {
      await client.connect(transport, { timeout: this.#timeoutMs });
    } catch (error) {
      client.close().catch(() => undefined);
      throw error;
    }
    connection.pid = stdio?.pid ?? null;
    if (stdio !== undefined) {
      const transport = stdio;
      holdChild(transport, false);
      connection.hold = () => {
        holdChild(transport, true);
      };
    }
    if (this.#closed) {
      await client.close().catch(() => undefined);
      throw new McpUnavailableError(this.name, undefined, 'the tool set was closed');
    }
    this.#live = connection;
    if (stdio !== undefined) {
      open.add(this);
      installExitHook();
    }
    return connection;
  }

  async #list(connection: Connection): Promise<readonly Tool[]> {
    const listed: SdkTool[] = [];
    let cursor: string | undefined;
    do {
      const page = await connection.client.listTools(cursor === undefined ? {} : { cursor }, {
        timeout: this.#timeoutMs,
      });
      listed.push(...page.tools);
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    const byName = new Map(listed.map((t) => [t.name, t]));
    let chosen = listed;
    if (this.#include !== undefined) {
      for (const name of this.#include) {
        if (!byName.has(name)) {
          throw new InvalidOptionError(`mcpTools(${this.name}).include`, name, 'a tool the server lists', {
            hint: `it lists: ${listed.map((t) => t.name).join(', ') || 'no tools'}`,
          });
        }
      }
      const included = new Set(this.#include);
      chosen = chosen.filter((t) => included.has(t.name));
    }
    const filter = this.#filter;
    if (filter !== undefined) {
      chosen = chosen.filter((t) => filter({ name: t.name, description: descriptionOf(t, this.name) }));
    }
    return Object.freeze(chosen.map((t) => this.#tool(t)));
  }

  #tool(listed: SdkTool): Tool {
    const remote = listed.name;
    const { $schema: _schema, ...parameters } = listed.inputSchema;
    return Object.freeze({
      name: agentToolName(remote),
      description: descriptionOf(listed, this.name),
      input: validatorOf(parameters),
      parameters: Object.freeze(parameters),
      run: (args: unknown, context: { readonly signal: AbortSignal }) =>
        this.call(remote, args as Record<string, unknown>, context.signal),
    });
  }

  async #call(
    connection: Connection,
    tool: string,
    args: Record<string, unknown>,
    signal: AbortSignal | undefined,
  ): Promise<unknown> {
    let result: Record<string, unknown>;
    try {
      result = await connection.client.callTool({ name: tool, arguments: args }, undefined, {
        timeout: this.#timeoutMs,
        ...(signal === undefined ? {} : { signal }),
      });
    } catch (error) {
      if (signal?.aborted === true || connection.closed || isConnectionClosed(error)) throw error;
      if (rpcCode(error) === requestTimeout) {
        throw new McpToolError(this.name, tool, 'timeout', `did not answer within ${this.#timeoutMs} ms.`, {
          hint: 'try again later, or with less work; the call was cancelled on the server',
        });
      }
      const message = this.#scrub(errorMessage(error))
        .replace(/(MCP error -?\d+: )+/g, '')
        .replace(/\s+/g, ' ')
        .slice(0, 300);
      if (
        Array.isArray((error as { issues?: unknown } | null)?.issues) ||
        /invalid tools\/call result/i.test(message)
      ) {
        throw new McpToolError(
          this.name,
          tool,
          'invalid_result',
          `sent a result that is not a valid MCP tool result: ${message}`,
        );
      }
      throw new McpToolError(this.name, tool, 'protocol_error', `failed: ${message}`, {
        cause: this.#scrubbedCause(error),
      });
    }
    return this.#result(tool, result);
  }

  /** A call's result as an agent tool's value: structured content as JSON, else the content as text. */
  #result(tool: string, result: Record<string, unknown>): unknown {
    const text = contentText(result['content']);
    if (result['isError'] === true) {
      throw new McpToolError(this.name, tool, 'tool_error', `returned an error: ${text || '(no message)'}`);
    }
    if (result['structuredContent'] !== undefined) return result['structuredContent'];
    // A pre-2024-11 server answers { toolResult } instead of content.
    if (!('content' in result) && 'toolResult' in result) return result['toolResult'];
    return text;
  }

  #scrub(text: string): string {
    let out = text;
    for (const secret of this.#secrets) out = out.replaceAll(secret, '***');
    return out;
  }

  /** A plain error with the cause's (scrubbed) message: the SDK's error objects may hold request data. */
  #scrubbedCause(error: unknown): Error {
    const cause = new Error(this.#scrub(errorMessage(error)));
    cause.name = error instanceof Error ? error.name : 'Error';
    return cause;
  }
}

/**
 * The tools of an MCP server, for agent nodes: `tools: [mcpTools({ command: 'npx', args: [...] })]` or
 * `mcpTools({ url: 'http://127.0.0.1:3001/mcp', headers: { Authorization: … } })`. Nothing connects until
 * an agent first lists its tools. See {@link McpTools} for the connection's life.
 *
 * @example
 * ```ts
 * const everything = mcpTools(
 *   { command: 'npx', args: ['-y', '@modelcontextprotocol/server-everything'] },
 *   { name: 'everything', include: ['echo', 'get-sum'], timeoutMs: 10_000 },
 * );
 * const helper = chain({ input: z.object({ q: z.string() }) })
 *   .agent('helper', { prompt: ({ input }) => input.q, tools: [everything] })
 *   .build();
 * try { await helper.run({ q: 'What is 2 + 3?' }); } finally { await everything.close(); }
 * ```
 * @throws {InvalidOptionError} for a server with neither `command` nor `url`, a bad URL or one with a
 *   password, a bad `name`, `include`, `filter` or `timeoutMs`.
 */
export function mcpTools(server: McpServer, options: McpToolsOptions = {}): McpTools {
  const given: unknown = server;
  if (typeof given !== 'object' || given === null) {
    throw new InvalidOptionError('mcpTools(server)', given, '{ command, args?, env? } or { url, headers? }');
  }
  if ('url' in server) {
    const url = URL.parse(String(server.url));
    if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      throw new InvalidOptionError('mcpTools(server).url', '(not shown)', 'an http: or https: URL');
    }
    if (url.password !== '' || url.username !== '') {
      throw new InvalidOptionError('mcpTools(server).url', publicUrl(url), 'a URL without user:password@', {
        hint: 'send credentials in headers, e.g. { Authorization: `Bearer ${token}` }',
      });
    }
    checkStrings('headers', server.headers);
  } else {
    if (typeof server.command !== 'string' || server.command.trim() === '') {
      throw new InvalidOptionError('mcpTools(server).command', server.command, 'a non-empty command');
    }
    if (
      server.args !== undefined &&
      !(Array.isArray(server.args) && server.args.every((a) => typeof a === 'string'))
    ) {
      throw new InvalidOptionError('mcpTools(server).args', server.args, 'an array of strings');
    }
    checkStrings('env', server.env);
  }
  const { name, include, filter, timeoutMs } = options;
  if (name !== undefined && (typeof name !== 'string' || !/^[\w.-]{1,64}$/.test(name))) {
    throw new InvalidOptionError('mcpTools.name', name, '1 to 64 letters, digits, `_`, `.` or `-`');
  }
  if (include !== undefined && !(Array.isArray(include) && include.every((n) => typeof n === 'string'))) {
    throw new InvalidOptionError('mcpTools.include', include, 'an array of tool names');
  }
  if (filter !== undefined && typeof filter !== 'function') {
    throw new InvalidOptionError('mcpTools.filter', filter, 'a function of { name, description }');
  }
  if (timeoutMs !== undefined && !(Number.isInteger(timeoutMs) && timeoutMs >= 1)) {
    throw new InvalidOptionError('mcpTools.timeoutMs', timeoutMs, 'an integer >= 1 (milliseconds)');
  }
  return new McpTools(server, options);
}

function checkStrings(option: 'env' | 'headers', value: unknown): void {
  if (value === undefined) return;
  const ok =
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.values(value).every((v) => typeof v === 'string');
  if (!ok) {
    // The values may be secrets: name their keys only.
    const keys = typeof value === 'object' && value !== null ? Object.keys(value).join(', ') : typeof value;
    throw new InvalidOptionError(
      `mcpTools(server).${option}`,
      `(keys: ${keys})`,
      'an object of string values',
    );
  }
}

function defaultName(server: McpServer): string {
  if ('url' in server) return new URL(server.url).host.replace(/[^\w.-]/g, '_');
  const base = server.command.split(/[\\/]/).at(-1) ?? server.command;
  return base.replace(/[^\w.-]/g, '_').slice(0, 64) || 'mcp';
}

/** A URL without its userinfo, query and fragment (a token may sit in any of them). */
function publicUrl(url: string | URL): string {
  const parsed = URL.parse(String(url));
  if (parsed === null) return '(an invalid URL)';
  return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
}

/** An MCP tool's name as an agent tool name: the characters providers refuse become `_`. */
function agentToolName(name: string): string {
  if (toolName.test(name)) return name;
  return name.replace(/[^a-zA-Z0-9_-]/g, '_').slice(0, 64) || 'tool';
}

function descriptionOf(tool: SdkTool, server: string): string {
  const text = tool.description ?? tool.title ?? '';
  return text.trim() === '' ? `The "${tool.name}" tool of the MCP server "${server}".` : text;
}

/**
 * A zod schema that checks a value against a JSON Schema (through zod's `fromJSONSchema`, else only that it
 * is an object) and passes the value on unchanged, so the server gets the arguments as the model sent them.
 */
function validatorOf(schema: Readonly<Record<string, unknown>>): z.ZodType<Record<string, unknown>> {
  let check: z.ZodType;
  try {
    check = z.fromJSONSchema(schema);
  } catch {
    check = z.record(z.string(), z.unknown());
  }
  return z.custom<Record<string, unknown>>().superRefine((value, context) => {
    const parsed = check.safeParse(value);
    if (parsed.success) return;
    for (const issue of parsed.error.issues) {
      context.addIssue({ code: 'custom', message: issue.message, path: [...issue.path] });
    }
  });
}

/** The text of a result's content parts: text as is, other parts as a short note. */
function contentText(content: unknown): string {
  if (!Array.isArray(content)) return '';
  const parts: string[] = [];
  for (const part of content as Record<string, unknown>[]) {
    switch (part['type']) {
      case 'text':
        parts.push(String(part['text']));
        break;
      case 'image':
      case 'audio':
        parts.push(`[${part['type']} ${String(part['mimeType'])}]`);
        break;
      case 'resource': {
        const resource = (part['resource'] ?? {}) as Record<string, unknown>;
        parts.push(
          typeof resource['text'] === 'string' ? resource['text'] : `[resource ${String(resource['uri'])}]`,
        );
        break;
      }
      case 'resource_link':
        parts.push(`[resource link ${String(part['uri'])}]`);
        break;
      default:
        parts.push(JSON.stringify(part));
    }
  }
  return parts.join('\n');
}

/** What this module touches of the stdio transport's child process (a private field of the SDK's). */
interface Refable {
  ref?: () => void;
  unref?: () => void;
}

/**
 * With `hold: false`, lets the process exit while a stdio server is idle: the child and its pipes stop
 * holding the event loop (a call in flight still does, through the SDK's request timer), and the `exit`
 * handler ends the server. With `hold: true` (before closing: the SDK then waits for the child's exit on
 * unreferenced timers), they hold it again.
 */
function holdChild(transport: object, hold: boolean): void {
  const child = (transport as { _process?: Refable & Record<'stdin' | 'stdout' | 'stderr', Refable | null> })
    ._process;
  if (child === undefined) return;
  for (const handle of [child, child.stdin, child.stdout, child.stderr]) {
    if (hold) handle?.ref?.();
    else handle?.unref?.();
  }
}

/** JSON-RPC codes of the SDK's `McpError`. */
const connectionClosed = -32000;
const requestTimeout = -32001;

function rpcCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/**
 * True when the error says the connection is gone rather than that the call failed: the SDK's
 * ConnectionClosed, a transport that is not connected, an HTTP request that could not be sent (`fetch
 * failed`, a refused or reset socket), or an HTTP session the server no longer knows (404).
 */
function isConnectionClosed(error: unknown): boolean {
  if (rpcCode(error) === connectionClosed || /not connected/i.test(errorMessage(error))) return true;
  if (error instanceof TypeError && /fetch failed/i.test(error.message)) return true;
  const cause = (error as { cause?: { code?: unknown } } | null)?.cause;
  if (
    typeof cause?.code === 'string' &&
    /^(ECONNREFUSED|ECONNRESET|EPIPE|UND_ERR_SOCKET)$/.test(cause.code)
  ) {
    return true;
  }
  return (error as Error | null)?.name === 'StreamableHTTPError' && rpcCode(error) === 404;
}
