/**
 * MCP tools in agent nodes, against real MCP servers over stdio: the reference server
 * `@modelcontextprotocol/server-everything`, and test/support/mcp-fault-server.ts for the faults (slow,
 * crash, bad result, error result, list changed). The model is a scripted provider; the tools, their
 * schemas and results are the servers' own.
 */
import { execFile } from 'node:child_process';
import { inspect } from 'node:util';
import { resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  ChainDefinitionError,
  ChainRunError,
  InvalidOptionError,
  McpToolError,
  McpUnavailableError,
  ModelClient,
  ProviderRegistry,
  chain,
  mcpTools,
  tool,
  type ChainEvent,
  type McpTools,
  type ModelRequest,
} from '../../src/index.ts';
import { ScriptedProvider, type ScriptedReply } from '../helpers/scripted-provider.ts';

const root = resolve(import.meta.dirname, '../..');
const everythingBin = join('node_modules/@modelcontextprotocol/server-everything/dist/index.js');
const faultBin = join('test/support/mcp-fault-server.ts');

function join(path: string): string {
  return resolve(root, path);
}

const sets: McpTools[] = [];
afterAll(async () => {
  await Promise.all(sets.map((s) => s.close()));
});

function everything(options: Parameters<typeof mcpTools>[1] = {}): McpTools {
  const set = mcpTools(
    { command: process.execPath, args: [everythingBin, 'stdio'], stderr: 'ignore' },
    { name: 'everything', ...options },
  );
  sets.push(set);
  return set;
}

function faults(options: Parameters<typeof mcpTools>[1] = {}, env?: Record<string, string>): McpTools {
  const set = mcpTools(
    { command: process.execPath, args: [faultBin], stderr: 'ignore', ...(env === undefined ? {} : { env }) },
    { name: 'faults', timeoutMs: 5_000, ...options },
  );
  sets.push(set);
  return set;
}

function clientWith(reply: (request: ModelRequest, n: number) => ScriptedReply): {
  client: ModelClient;
  provider: ScriptedProvider;
} {
  const provider = new ScriptedProvider('fake', reply);
  const registry = new ProviderRegistry().register(provider);
  return { client: new ModelClient({ registry, retry: { maxRetries: 1, baseDelayMs: 1 } }), provider };
}

const toolResults = (request: ModelRequest): string[] =>
  request.messages.filter((m) => m.role === 'tool').map((m) => m.content);

describe('mcpTools() with server-everything over stdio', () => {
  it("lists the server's tools with its JSON Schemas, and include keeps only the named ones", async () => {
    const all = await everything().tools();
    expect(all.map((t) => t.name)).toEqual(expect.arrayContaining(['echo', 'get-sum']));
    const some = await everything({ include: ['get-sum', 'echo'] }).tools();
    expect(some.map((t) => t.name).sort()).toEqual(['echo', 'get-sum']);
    const sum = some.find((t) => t.name === 'get-sum');
    expect(sum?.parameters).toMatchObject({
      type: 'object',
      properties: { a: { type: 'number' }, b: { type: 'number' } },
      required: ['a', 'b'],
    });
    expect(sum?.description).toBe('Returns the sum of two numbers');
  });

  it('filter picks tools by name', async () => {
    const picked = await everything({ filter: ({ name }) => name.startsWith('get-s') }).tools();
    expect(picked.map((t) => t.name).sort()).toEqual(['get-structured-content', 'get-sum']);
  });

  it('an include naming a tool the server does not list fails the listing, naming the tool', async () => {
    const error = await everything({ include: ['echo', 'nope'] })
      .tools()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect((error as InvalidOptionError).value).toBe('nope');
  });

  it("runs an agent on the server's tools: results, validation errors back to the model, steps and events", async () => {
    const set = everything({ include: ['echo', 'get-sum', 'get-structured-content'] });
    const { client, provider } = clientWith((request, n) => {
      if (n === 1) {
        return {
          toolCalls: [
            { name: 'get-sum', arguments: { a: 2, b: 3 } },
            { name: 'get-sum', arguments: { a: 'two' } },
          ],
        };
      }
      if (n === 2) {
        return {
          toolCalls: [
            { name: 'echo', arguments: { message: 'hello' } },
            { name: 'get-structured-content', arguments: { location: 'Chicago' } },
          ],
        };
      }
      return `answer from: ${toolResults(request).join(' | ')}`;
    });
    const events: ChainEvent[] = [];
    const helper = chain({ input: z.object({ q: z.string() }), model: 'fake:m', client })
      .agent('helper', { prompt: ({ input }) => input.q, tools: [set] })
      .build();
    const result = await helper.run({ q: 'add and echo' }, { onEvent: (e) => events.push(e) });

    const [sumOk, sumBad, echo, weather] = toolResults(provider.requests[2]!);
    expect(sumOk).toBe('The sum of 2 and 3 is 5.');
    expect(sumBad).toMatch(/^Error: invalid arguments for "get-sum": a: .*expected number.*; b: /);
    expect(echo).toBe('Echo: hello');
    expect(JSON.parse(weather ?? '')).toEqual({
      temperature: expect.any(Number) as number,
      conditions: expect.any(String) as string,
      humidity: expect.any(Number) as number,
    });
    expect(result.outputs.helper).toBe(`answer from: ${[sumOk, sumBad, echo, weather].join(' | ')}`);
    expect(result.steps.helper?.map((s) => s.toolCalls.map((c) => [c.name, c.ok]))).toEqual([
      [
        ['get-sum', true],
        ['get-sum', false],
      ],
      [
        ['echo', true],
        ['get-structured-content', true],
      ],
      [],
    ]);
    // The provider got the server's schemas as the tools' parameters.
    const sent = provider.requests[0]?.tools?.find((t) => t.name === 'get-sum');
    expect(sent?.parameters).toMatchObject({ required: ['a', 'b'] });
    // The stream shows each call and its outcome, then the turn.
    const kinds = events
      .filter((e) => e.type === 'tool-call' || e.type === 'tool-result' || e.type === 'agent-step')
      .map((e) => (e.type === 'agent-step' ? `step ${e.step.step}` : `${e.type} ${e.toolName}`));
    expect(kinds.slice(0, 5)).toEqual([
      'tool-call get-sum',
      'tool-result get-sum',
      'tool-call get-sum',
      'tool-result get-sum',
      'step 1',
    ]);
    // Invalid arguments never reached the server: only the valid calls were made.
    expect(set.connectionsOpened).toBe(1);
  });

  it('streams MCP tool calls as tool-call, tool-result and agent-step events', async () => {
    const set = everything({ include: ['get-sum'] });
    const { client } = clientWith((request) =>
      request.messages.at(-1)?.role === 'tool'
        ? `It is ${toolResults(request).join('')}`
        : { toolCalls: [{ name: 'get-sum', arguments: { a: 40, b: 2 } }] },
    );
    const helper = chain({ input: z.object({}), model: 'fake:m', client })
      .agent('helper', { prompt: () => 'sum', tools: [set] })
      .build();
    const seen: string[] = [];
    for await (const event of helper.stream({})) {
      if (event.type === 'tool-call') seen.push(`call ${event.toolName} ${JSON.stringify(event.input)}`);
      if (event.type === 'tool-result') seen.push(`result ${String(event.ok)} ${event.output}`);
      if (event.type === 'agent-step') seen.push(`step ${event.step.step}`);
      if (event.type === 'node-done') seen.push(`done ${String(event.output)}`);
    }
    expect(seen).toEqual([
      'call get-sum {"a":40,"b":2}',
      'result true The sum of 40 and 2 is 42.',
      'step 1',
      'step 2',
      'done It is The sum of 40 and 2 is 42.',
    ]);
  });

  it('opens one connection for every node and run that uses the set, and lists the tools once', async () => {
    const set = everything({ include: ['get-sum'] });
    const { client, provider } = clientWith((request) =>
      request.messages.at(-1)?.role === 'tool'
        ? 'done'
        : { toolCalls: [{ name: 'get-sum', arguments: { a: 1, b: 1 } }] },
    );
    const twice = chain({ input: z.object({}), model: 'fake:m', client })
      .agent('one', { prompt: () => 'sum', tools: [set] })
      .agent('two', { prompt: () => 'sum', tools: [set] })
      .build();
    await Promise.all([twice.run({}), twice.run({})]);
    expect(set.connectionsOpened).toBe(1);
    const first = await set.tools();
    expect(await set.tools()).toBe(first);
    expect(provider.requests.filter((r) => r.tools !== undefined)).toHaveLength(8);
    await set.close();
    expect(set.connected).toBe(false);
    const after = await set.tools().catch((e: unknown) => e);
    expect(after).toBeInstanceOf(McpUnavailableError);
    expect((after as McpUnavailableError).code).toBe('mcp_unavailable');
  });

  it('counts MCP tool turns against maxSteps, then asks for the final answer without tools', async () => {
    const set = everything({ include: ['echo'] });
    const { client, provider } = clientWith((request) =>
      request.tools === undefined
        ? 'final'
        : { toolCalls: [{ name: 'echo', arguments: { message: 'again' } }] },
    );
    const looping = chain({ input: z.object({}), model: 'fake:m', client })
      .agent('loop', { prompt: () => 'loop', tools: [set], maxSteps: 2 })
      .build();
    const result = await looping.run({});
    expect(result.outputs.loop).toBe('final');
    expect(result.steps.loop).toHaveLength(2);
    expect(provider.requests).toHaveLength(3);
    expect(provider.requests[2]?.tools).toBeUndefined();
  });

  it('takes zod tools next to MCP tools, and refuses two tools of one name when the agent runs', async () => {
    const set = everything({ include: ['echo'] });
    const local = tool({
      name: 'shout',
      description: 'Upper-cases.',
      input: z.object({ s: z.string() }),
      run: ({ s }) => s.toUpperCase(),
    });
    const { client, provider } = clientWith((request) =>
      request.messages.at(-1)?.role === 'tool'
        ? toolResults(request).join(',')
        : {
            toolCalls: [
              { name: 'shout', arguments: { s: 'a' } },
              { name: 'echo', arguments: { message: 'b' } },
            ],
          },
    );
    const both = chain({ input: z.object({}), model: 'fake:m', client })
      .agent('both', { prompt: () => 'go', tools: [local, set] })
      .build();
    expect((await both.run({})).outputs.both).toBe('A,Echo: b');
    expect(provider.requests[0]?.tools?.map((t) => t.name)).toEqual(['shout', 'echo']);

    const clash = tool({ name: 'echo', description: 'Mine.', input: z.object({}), run: () => 'mine' });
    const twice = chain({ input: z.object({}), model: 'fake:m', client })
      .agent('twice', { prompt: () => 'go', tools: [clash, set] })
      .build();
    const error = await twice.run({}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChainRunError);
    expect((error as ChainRunError).cause).toBeInstanceOf(ChainDefinitionError);
    expect((error as ChainRunError).message).toContain('two tools named "echo"');
  });

  it("changes the chain's definition hash with the server or its tool choice, without connecting", () => {
    const build = (set: McpTools) =>
      chain({ input: z.object({}), model: 'fake:m' })
        .agent('a', { prompt: () => 'x', tools: [set] })
        .build();
    const echoOnly = everything({ include: ['echo'] });
    const one = build(echoOnly);
    expect(build(everything({ include: ['echo'] })).hash).toBe(one.hash);
    expect(build(everything({ include: ['get-sum'] })).hash).not.toBe(one.hash);
    expect(echoOnly.connectionsOpened).toBe(0);
  });
});

describe('mcpTools() faults (test/support/mcp-fault-server.ts)', () => {
  it('a slow call times out: its error goes back to the model, and the connection stays usable', async () => {
    // Long enough that the quick calls of this test never reach it on a loaded machine (the bound applies to
    // every call of the set), far below the slow call's 10 s.
    const set = faults({ timeoutMs: 1_500 });
    const { client, provider } = clientWith((request, n) => {
      if (n === 1) return { toolCalls: [{ name: 'slow', arguments: { ms: 10_000 } }] };
      if (n === 2) return { toolCalls: [{ name: 'echo', arguments: { text: 'still here' } }] };
      return toolResults(request).join(' / ');
    });
    const agent = chain({ input: z.object({}), model: 'fake:m', client })
      .agent('a', { prompt: () => 'go', tools: [set] })
      .build();
    const result = await agent.run({});
    expect(result.outputs.a).toBe(
      'Error: Tool "slow" of MCP server "faults" did not answer within 1500 ms. (try again later, or with less work; the call was cancelled on the server) / still here',
    );
    expect(result.steps.a?.[0]?.toolCalls[0]?.ok).toBe(false);
    expect(set.connectionsOpened).toBe(1);
    // The timed-out call was cancelled on the server (notifications/cancelled).
    expect(await set.call('cancelled', {})).toBe('1');
    expect(provider.requests).toHaveLength(3);
    const direct = await set.call('slow', { ms: 10_000 }).catch((e: unknown) => e);
    expect(direct).toBeInstanceOf(McpToolError);
    expect((direct as McpToolError).reason).toBe('timeout');
  }, 15_000);

  it('cancelling the run cancels a call in flight; the connection stays usable', async () => {
    const set = faults();
    const { client } = clientWith(() => ({ toolCalls: [{ name: 'slow', arguments: { ms: 10_000 } }] }));
    const agent = chain({ input: z.object({}), model: 'fake:m', client })
      .agent('a', { prompt: () => 'go', tools: [set] })
      .build();
    const controller = new AbortController();
    const error = await agent
      .run(
        {},
        {
          signal: controller.signal,
          onEvent: (event) => {
            if (event.type === 'tool-call')
              setTimeout(() => {
                controller.abort();
              }, 50);
          },
        },
      )
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChainRunError);
    expect((error as ChainRunError).status).toBe('cancelled');
    // The server was told: its slow call stopped waiting (notifications/cancelled).
    while ((await set.call('cancelled', {})) === '0') await new Promise((r) => setTimeout(r, 10));
    expect(await set.call('cancelled', {})).toBe('1');
    expect(await set.call('echo', { text: 'after cancel' })).toBe('after cancel');
    expect(set.connectionsOpened).toBe(1);
  });

  it('a server that crashes is reconnected once, then the call fails the node with a typed error naming the server', async () => {
    const set = faults();
    const { client } = clientWith(() => ({ toolCalls: [{ name: 'crash', arguments: {} }] }));
    const agent = chain({ input: z.object({}), model: 'fake:m', client })
      .agent('a', { prompt: () => 'go', tools: [set] })
      .build();
    const error = await agent.run({}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChainRunError);
    const cause = (error as ChainRunError).cause;
    expect(cause).toBeInstanceOf(McpUnavailableError);
    expect(cause).toMatchObject({ code: 'mcp_unavailable', server: 'faults', tool: 'crash' });
    // The node's record in the trace says so too.
    const record = (error as ChainRunError).trace.find((r) => r.key === 'a');
    expect(record?.status).toBe('error');
    expect(record?.error?.message).toContain('MCP server "faults" (tool "crash")');
    // The first connection, and the one reconnect.
    expect(set.connectionsOpened).toBe(2);
    // A later call finds the server gone and reconnects.
    expect(await set.call('echo', { text: 'back' })).toBe('back');
    expect(set.connectionsOpened).toBe(3);
  });

  it('a server killed between calls is reconnected for the next call', async () => {
    const set = faults();
    expect(await set.call('echo', { text: 'one' })).toBe('one');
    const pid = Number(await set.call('pid', {}));
    process.kill(pid, 'SIGKILL');
    while (set.connected) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(await set.call('echo', { text: 'two' })).toBe('two');
    expect(set.connectionsOpened).toBe(2);
    expect(Number(await set.call('pid', {}))).not.toBe(pid);
  });

  it('a malformed result, an error result and structured content become tool results', async () => {
    const set = faults();
    const { client } = clientWith((request, n) =>
      n === 1
        ? {
            toolCalls: [
              { name: 'bad_result', arguments: {} },
              { name: 'fail', arguments: {} },
              { name: 'weather', arguments: { city: 'Oslo' } },
              { name: 'weather', arguments: { city: 'Paris' } },
            ],
          }
        : toolResults(request).join('\n'),
    );
    const agent = chain({ input: z.object({}), model: 'fake:m', client })
      .agent('a', { prompt: () => 'go', tools: [set] })
      .build();
    const result = await agent.run({});
    const [bad, fail, oslo, paris] = result.outputs.a.split('\n');
    expect(bad).toMatch(
      /^Error: Tool "bad_result" of MCP server "faults" sent a result that is not a valid MCP tool result: .*content/,
    );
    expect(fail).toBe(
      'Error: Tool "fail" of MCP server "faults" returned an error: the weather service is down',
    );
    expect(JSON.parse(oslo ?? '')).toEqual({ city: 'Oslo', celsius: 4 });
    expect(paris).toMatch(/^Error: invalid arguments for "weather": city: /);
    expect(result.steps.a?.[0]?.toolCalls.map((c) => c.ok)).toEqual([false, false, true, false]);
    const direct = await set.call('bad_result', {}).catch((e: unknown) => e);
    expect(direct).toMatchObject({ code: 'mcp_tool_failed', reason: 'invalid_result', server: 'faults' });
  });

  it("refreshes the cached tool list on the server's list-changed notification: the next turn has the new tool", async () => {
    const set = faults();
    const { client, provider } = clientWith((request, n) => {
      if (n === 1) return { toolCalls: [{ name: 'grow', arguments: {} }] };
      if (n === 2) return { toolCalls: [{ name: 'late', arguments: {} }] };
      return toolResults(request).join(' / ');
    });
    const agent = chain({ input: z.object({}), model: 'fake:m', client })
      .agent('a', { prompt: () => 'go', tools: [set] })
      .build();
    const result = await agent.run({});
    expect(provider.requests[0]?.tools?.map((t) => t.name)).not.toContain('late');
    expect(provider.requests[1]?.tools?.map((t) => t.name)).toContain('late');
    expect(result.outputs.a).toBe('grown / late here');
    expect(set.connectionsOpened).toBe(1);
  });

  it('a script that never calls close() still exits, and its stdio server ends with it', async () => {
    const script = `
      const { mcpTools } = await import('./src/index.ts');
      const set = mcpTools({ command: process.execPath, args: [${JSON.stringify(faultBin)}], stderr: 'ignore' });
      console.log(await set.call('pid', {}));
      console.log(await set.call('slow', { ms: 200 }));
    `;
    const out = await new Promise<string>((done, fail) => {
      execFile(
        process.execPath,
        ['--input-type=module', '-e', script],
        { cwd: root, timeout: 20_000 },
        (error, stdout, stderr) => {
          if (error === null) done(stdout);
          else fail(new Error(`${error.message}\n${stderr}`));
        },
      );
    });
    const [pid, slow] = out.trim().split('\n');
    expect(slow).toBe('slow done');
    const alive = (): boolean => {
      try {
        process.kill(Number(pid), 0);
        return true;
      } catch {
        return false;
      }
    };
    while (alive()) await new Promise((r) => setTimeout(r, 10));
    expect(alive()).toBe(false);
  });

  it('renames tools whose names providers refuse, and validates what it can of a schema zod cannot read', async () => {
    const set = faults({ include: ['dotted.name', 'refs'] });
    const tools = await set.tools();
    expect(tools.map((t) => t.name)).toEqual(['dotted_name', 'refs']);
    const refs = tools[1];
    // Sent to the provider as the server wrote it, $ref and all.
    expect(refs?.parameters).toMatchObject({ definitions: { word: { type: 'string' } } });
    expect(refs?.input.safeParse({ x: 'w' }).success).toBe(true);
    expect(refs?.input.safeParse('not an object').success).toBe(false);
    const { client } = clientWith((request) =>
      request.messages.at(-1)?.role === 'tool'
        ? toolResults(request).join(' / ')
        : {
            toolCalls: [
              { name: 'dotted_name', arguments: {} },
              { name: 'refs', arguments: { x: 'word' } },
            ],
          },
    );
    const agent = chain({ input: z.object({}), model: 'fake:m', client })
      .agent('a', { prompt: () => 'go', tools: [set] })
      .build();
    expect((await agent.run({})).outputs.a).toBe('dotted here / x is "word"');
  });

  it('passes env to a stdio server, and never shows env or header values in errors', async () => {
    const secret = 'sekret-value-4711';
    const set = faults({}, { FAULT_TOKEN: secret });
    expect(await set.call('env', { name: 'FAULT_TOKEN' })).toBe(secret);

    const missing = mcpTools(
      { command: join('.scratch/no-such-mcp-server'), env: { FAULT_TOKEN: secret }, stderr: 'ignore' },
      { name: 'missing' },
    );
    sets.push(missing);
    const spawnError = await missing.tools().catch((e: unknown) => e);
    expect(spawnError).toBeInstanceOf(McpUnavailableError);
    expect(spawnError).toMatchObject({ server: 'missing' });
    expect((spawnError as Error).message).toContain('could not connect');

    const http = mcpTools(
      { url: 'http://127.0.0.1:9/mcp', headers: { Authorization: `Bearer ${secret}` } },
      { name: 'nowhere', timeoutMs: 2_000 },
    );
    sets.push(http);
    const httpError = await http.tools().catch((e: unknown) => e);
    expect(httpError).toBeInstanceOf(McpUnavailableError);
    for (const error of [spawnError, httpError]) {
      const shown = `${String(error)} ${JSON.stringify(error)} ${inspect(error, { depth: 5 })}`;
      expect(shown).not.toContain(secret);
    }
  });

  it('refuses bad servers and options by name, without showing URL passwords or header values', () => {
    expect(() => mcpTools({ url: 'http://user:hunter2@127.0.0.1/mcp' })).toThrow(InvalidOptionError);
    try {
      mcpTools({ url: 'http://user:hunter2@127.0.0.1/mcp' });
    } catch (error) {
      expect(inspect(error)).not.toContain('hunter2');
    }
    expect(() => mcpTools({ command: '' })).toThrow(/mcpTools\(server\)\.command/);
    expect(() => mcpTools({ command: 'x', env: { A: 1 as unknown as string } })).toThrow(/keys: A/);
    expect(() => mcpTools({ command: 'x' }, { timeoutMs: 0 })).toThrow(/timeoutMs/);
    expect(() => mcpTools({ url: 'ftp://127.0.0.1/' })).toThrow(/http: or https:/);
  });
});
