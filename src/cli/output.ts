/**
 * What the command prints: values, usage and cost, errors (`error [code]: message` and `hint:`), secret
 * scrubbing, and the progress of a run (redrawn in place on a TTY, plain lines otherwise).
 */
import { SymphonizerError } from '../core/errors.ts';
// The redaction module itself, not the providers index: that would load the provider SDKs for `--help`.
import { REDACTED, redactSecrets, redactUrlCredentials } from '../providers/redact.ts';
import type { UsageTotals } from '../providers/usage.ts';
import type { ChainEvent } from '../chain/types.ts';
import { CliError } from './errors.ts';

/** A stream the command writes to (`process.stdout`, or a test double). */
export interface CliWritable {
  write(text: string): unknown;
  /** True on a terminal: progress is then redrawn in place. */
  readonly isTTY?: boolean | undefined;
  /** Terminal width; progress lines are cut to it. */
  readonly columns?: number | undefined;
}

/** Where the command reads and writes; {@link main} defaults each to the process's own. */
export interface CliIO {
  readonly stdout: CliWritable;
  readonly stderr: CliWritable;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Directory module and `@file` paths are resolved against. */
  readonly cwd: string;
  /** Aborting it cancels a running chain (the bin entry aborts on Ctrl+C). */
  readonly signal?: AbortSignal | undefined;
}

const secretName = /(API_KEY|_TOKEN|SECRET|PASSWORD)$/i;

/**
 * Wraps a stream so nothing written through it shows the value of an environment variable named like a
 * secret (`*API_KEY`, `*_TOKEN`, `*SECRET`, `*PASSWORD`, values of 8 characters or more), the credentials of
 * any `scheme://user:password@` URL (the userinfo becomes `***@`), or, anywhere, the user name or password
 * (8 characters or more, as written and decoded) of a URL held by any environment variable (`OPENAI_BASE_URL`).
 */
export function scrubbed(
  stream: CliWritable,
  env: Readonly<Record<string, string | undefined>>,
): CliWritable {
  const secrets = new Set<string>();
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue;
    if (secretName.test(name) && value.length >= 8) secrets.add(value);
    for (const part of urlCredentials(value)) if (part.length >= 8) secrets.add(part);
  }
  const sorted = [...secrets].sort((a, b) => b.length - a.length);
  return {
    write: (text: string) => {
      let safe = redactUrlCredentials(text);
      for (const secret of sorted) safe = safe.split(secret).join(REDACTED);
      return stream.write(safe);
    },
    get isTTY() {
      return stream.isTTY;
    },
    get columns() {
      return stream.columns; // read on each use: the terminal may be resized
    },
  };
}

/** The user name and password of `value` when it is a URL with credentials, as written and percent-decoded. */
function urlCredentials(value: string): string[] {
  if (!value.includes('@')) return [];
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    return [];
  }
  const parts = [url.username, url.password].filter((part) => part !== '');
  return [...parts, ...parts.map(decoded)];
}

function decoded(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

/** A node output for people: strings as they are, anything else as indented JSON. */
export function formatValue(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === undefined) return '(no output)';
  const json = JSON.stringify(value, null, 2) as string | undefined; // undefined for functions and symbols
  return json ?? `(${typeof value})`;
}

/** Dollars with enough digits to see small amounts: `$0`, `$0.000042`, `$1.2345`. */
export function formatCost(usd: number): string {
  if (usd === 0) return '$0';
  return `$${usd.toFixed(usd < 0.01 ? 6 : 4)}`;
}

/** Thousands separators: `12,345`. */
export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

/** `tokens: 120 in / 48 out (168), 3 calls, cost $0.0012` (cost marked when some calls were unpriced). */
export function formatUsage(usage: UsageTotals): string {
  const calls = `${usage.calls} ${usage.calls === 1 ? 'call' : 'calls'}`;
  const unpriced =
    usage.unpricedCalls > 0
      ? ` (at least: ${usage.unpricedCalls} unpriced ${usage.unpricedCalls === 1 ? 'call' : 'calls'})`
      : '';
  return (
    `tokens: ${formatCount(usage.inputTokens)} in / ${formatCount(usage.outputTokens)} out (${formatCount(usage.totalTokens)}), ` +
    `${calls}, cost ${formatCost(usage.costUsd)}${unpriced}`
  );
}

/** Milliseconds for people: `840 ms`, `2.4 s`. */
export function formatDuration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/**
 * Prints an error as `error [code]: message`, then its detail lines (a CliError's, then `details`), then
 * `hint: ...` when it has one. The
 * hint SymphonizerError appends to its message is printed on its own line instead.
 */
export function printError(stderr: CliWritable, error: unknown, details: readonly string[] = []): void {
  const { code, message, hint } = describeError(error);
  stderr.write(`error [${code}]: ${message}\n`);
  if (error instanceof CliError) for (const line of error.details) stderr.write(`${line}\n`);
  for (const line of details) stderr.write(`${line}\n`);
  if (hint !== undefined) stderr.write(`hint: ${hint}\n`);
}

/** Code, message (without the appended hint) and hint of an error; a cause's hint when it has none. */
export function describeError(error: unknown): { code: string; message: string; hint: string | undefined } {
  if (SymphonizerError.isInstance(error)) {
    let hint = error.hint;
    const message =
      hint !== undefined && error.message.endsWith(` (${hint})`)
        ? error.message.slice(0, -hint.length - 3)
        : error.message;
    if (hint === undefined && SymphonizerError.isInstance(error.cause)) hint = error.cause.hint;
    return {
      code: error.code,
      message: redactSecrets(message),
      hint: hint === undefined ? undefined : redactSecrets(hint),
    };
  }
  if (error instanceof Error)
    return { code: 'internal', message: redactSecrets(error.message), hint: undefined };
  return { code: 'internal', message: redactSecrets(String(error)), hint: undefined };
}

/** The zod issues of an `InputValidationError` (of any symphonizer copy), one line each with its input path. */
export function inputIssueLines(error: SymphonizerError): string[] {
  const issues = (error as { issues?: unknown }).issues;
  if (!Array.isArray(issues)) return [];
  return [
    'issues:',
    ...(issues as readonly { path?: unknown; message?: unknown; code?: unknown }[]).map((issue) => {
      const path = typeof issue.path === 'string' && issue.path !== '' ? `input.${issue.path}` : 'input';
      const code = typeof issue.code === 'string' ? ` (${issue.code})` : '';
      return `  - ${path}: ${String(issue.message)}${code}`;
    }),
  ];
}

/** Receives a run's events and shows its progress. */
export interface Progress {
  onEvent(event: ChainEvent): void;
  /** Stops redrawing and leaves the last state on screen. */
  finish(): void;
  /** Nodes whose text was printed as it streamed. */
  readonly streamed: ReadonlySet<string>;
}

/** Options of {@link createProgress}. */
export interface ProgressOptions {
  /** Print tokens as they come, each line prefixed with its node. */
  readonly stream: boolean;
  /** Redraw a status block in place (a TTY, not streaming) rather than print lines. */
  readonly live: boolean;
  /** Time source, for tests. @default performance.now */
  readonly now?: (() => number) | undefined;
}

interface NodeState {
  status: 'waiting' | 'running' | 'retrying' | 'completed' | 'failed';
  model: string;
  attempt: number;
  tokens: number;
  streamedChars: number;
  costUsd: number;
  note: string;
}

const spinner = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/**
 * The progress of a run. Live: a block with one line per node (status, model, tokens) and a total line
 * (nodes done, tokens, cost, time), redrawn in place with ANSI codes. Otherwise plain `[node] ...` lines, and
 * with `stream` the tokens themselves, prefixed with their node whenever the speaker changes.
 */
export function createProgress(out: CliWritable, options: ProgressOptions): Progress {
  const now = options.now ?? (() => performance.now());
  const nodes = new Map<string, NodeState>();
  const streamed = new Set<string>();
  const started = now();
  let drawnLines = 0;
  let frame = 0;
  let timer: ReturnType<typeof setInterval> | undefined;
  let lastDraw = 0;
  // Streaming: one node at a time (the focus) prints its tokens live; others are held until the focus ends
  // or they end themselves, so concurrent streams read as blocks rather than word-by-word interleaving.
  let focus: string | undefined;
  let openLine = false;
  const held = new Map<string, string>();
  let finished = false;

  const state = (node: string): NodeState => {
    let s = nodes.get(node);
    if (s === undefined) {
      s = { status: 'waiting', model: '', attempt: 0, tokens: 0, streamedChars: 0, costUsd: 0, note: '' };
      nodes.set(node, s);
    }
    return s;
  };

  const endLine = (): void => {
    if (openLine) out.write('\n');
    openLine = false;
  };
  const line = (text: string): void => {
    endLine();
    out.write(`${text}\n`);
  };
  /** Writes streamed text, every line prefixed with its node. */
  const writeText = (node: string, text: string): void => {
    text.split('\n').forEach((part, index) => {
      if (index > 0) {
        out.write('\n');
        openLine = false;
      }
      if (part === '') return;
      if (!openLine) out.write(`[${node}] `);
      openLine = true;
      out.write(part);
    });
  };
  const flushHeld = (node: string): void => {
    const text = held.get(node);
    if (text === undefined) return;
    held.delete(node);
    endLine();
    writeText(node, text);
  };
  /** After a node's done line: the next held node (still running: ended ones were flushed) takes the focus. */
  const passFocus = (node: string): void => {
    if (focus !== node) return;
    focus = undefined;
    const next = held.keys().next();
    if (next.done !== true) {
      focus = next.value;
      flushHeld(next.value);
    }
  };

  const draw = (): void => {
    lastDraw = now();
    frame = (frame + 1) % spinner.length;
    const width = Math.max(20, (out.columns !== undefined && out.columns > 0 ? out.columns : 80) - 1);
    const nameWidth = Math.min(24, Math.max(4, ...[...nodes.keys()].map((n) => n.length)));
    const lines: string[] = [];
    let done = 0;
    let tokens = 0;
    let cost = 0;
    for (const [name, s] of nodes) {
      if (s.status === 'completed' || s.status === 'failed') done++;
      tokens += s.tokens;
      cost += s.costUsd;
      const icon = {
        waiting: '·',
        running: spinner[frame] ?? '*',
        retrying: '↻',
        completed: '✓',
        failed: '✗',
      }[s.status];
      const tok =
        s.tokens > 0
          ? `${formatCount(s.tokens)} tok`
          : s.streamedChars > 0
            ? `${formatCount(s.streamedChars)} chars`
            : '';
      const attempt = s.attempt > 1 ? ` (attempt ${s.attempt})` : '';
      const parts = [`${icon} ${name.padEnd(nameWidth)}`, s.status + attempt, s.model, tok, s.note].filter(
        (p) => p !== '',
      );
      lines.push(cut(`  ${parts.join('  ')}`, width));
    }
    lines.push(
      cut(
        `  ${done}/${nodes.size} nodes · ${formatCount(tokens)} tokens · ${formatCost(cost)} · ${formatDuration(now() - started)}`,
        width,
      ),
    );
    // Up to the block's first line, then rewrite every line (clearing what is left of the old one).
    let text = drawnLines > 0 ? `\x1b[${drawnLines}F` : '';
    for (const l of lines) text += `\x1b[2K${l}\n`;
    if (lines.length < drawnLines) text += '\x1b[J';
    out.write(text);
    drawnLines = lines.length;
  };

  const onEvent = (event: ChainEvent): void => {
    switch (event.type) {
      case 'chain-start':
        for (const n of event.nodes) state(n);
        if (options.live) {
          draw();
          timer = setInterval(draw, 120);
          timer.unref();
        } else {
          line(
            `chain "${event.chain}" started: ${event.nodes.length} ${event.nodes.length === 1 ? 'node' : 'nodes'}`,
          );
        }
        return;
      case 'node-start': {
        const s = state(event.node);
        s.status = 'running';
        s.model = event.model;
        s.attempt = event.attempt;
        s.note = '';
        if (!options.live)
          line(
            `[${event.node}] start · ${event.model}${event.attempt > 1 ? ` · attempt ${event.attempt}` : ''}`,
          );
        break;
      }
      case 'token': {
        const s = state(event.node);
        s.streamedChars += event.text.length;
        if (options.stream) {
          streamed.add(event.node);
          focus ??= event.node;
          if (focus === event.node) writeText(event.node, event.text);
          else held.set(event.node, (held.get(event.node) ?? '') + event.text);
          return;
        }
        if (options.live && now() - lastDraw < 50) return;
        break;
      }
      case 'retry': {
        const s = state(event.node);
        s.status = 'retrying';
        s.note = `retry in ${formatDuration(event.delayMs)}: ${event.reason}`;
        if (!options.live)
          line(
            `[${event.node}] retry ${event.attempt} in ${formatDuration(event.delayMs)} (${event.kind}): ${event.reason}`,
          );
        break;
      }
      case 'rate-limit-wait': {
        const s = state(event.node);
        s.note = `rate limit: ${event.reason}`;
        if (!options.live) {
          line(
            `[${event.node}] rate-limit wait${event.delayMs === undefined ? '' : ` ${formatDuration(event.delayMs)}`}: ${event.reason}`,
          );
        }
        break;
      }
      case 'agent-step': {
        const s = state(event.node);
        const tools = event.step.toolCalls.map((c) => `${c.name}${c.ok ? '' : ' (failed)'}`);
        s.note = `step ${event.step.step}${tools.length > 0 ? `: ${tools.join(', ')}` : ''}`;
        if (!options.live)
          line(
            `[${event.node}] step ${event.step.step}${tools.length > 0 ? ` · tools: ${tools.join(', ')}` : ' · answer'}`,
          );
        break;
      }
      case 'node-done': {
        flushHeld(event.node); // a node's held text comes before its done line
        const s = state(event.node);
        s.status =
          event.status === 'completed' || event.status === 'completed_error' ? 'completed' : 'failed';
        s.note = event.error ?? '';
        if (event.usage !== undefined) {
          s.tokens = event.usage.totalTokens;
          s.costUsd = event.usage.costUsd;
        }
        if (!options.live) {
          const tok = event.usage === undefined ? '' : ` · ${formatCount(event.usage.totalTokens)} tokens`;
          line(
            `[${event.node}] ${event.status}${tok}${event.error === undefined ? '' : ` · ${event.error}`}`,
          );
        }
        passFocus(event.node);
        break;
      }
      case 'chain-done':
        if (!options.live) {
          line(
            `chain ${event.status} · ${formatCount(event.usage.totalTokens)} tokens · ${formatCost(event.usage.costUsd)}`,
          );
        }
        break;
    }
    if (options.live && drawnLines > 0) draw();
  };

  return {
    onEvent,
    streamed,
    finish: () => {
      if (finished) return;
      finished = true;
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      if (options.live && drawnLines > 0) draw();
      for (const node of [...held.keys()]) flushHeld(node);
      endLine();
    },
  };
}

function cut(raw: string, width: number): string {
  const text = raw.replaceAll(/\s*\n\s*/g, ' ');
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}
