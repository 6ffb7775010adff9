/**
 * MCP tools over Streamable HTTP: `@modelcontextprotocol/server-everything streamableHttp` on a random
 * loopback port, its tools in an agent node, headers sent, and a server stopped under a live connection.
 */
import type { ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  ChainRunError,
  McpUnavailableError,
  ModelClient,
  ProviderRegistry,
  chain,
  mcpTools,
  type McpTools,
} from '../../src/index.ts';
import { ScriptedProvider } from '../helpers/scripted-provider.ts';
import { freePort, spawnServer, stopByPid, waitUntil } from '../support/server-process.ts';

const bin = resolve(
  import.meta.dirname,
  '../../node_modules/@modelcontextprotocol/server-everything/dist/index.js',
);

let server: ChildProcess;
let url: string;
const sets: McpTools[] = [];

async function start(port: number): Promise<ChildProcess> {
  const started = spawnServer(process.execPath, [bin, 'streamableHttp'], {
    env: { ...process.env, PORT: String(port) },
  });
  await waitUntil('server-everything (streamableHttp)', started.child, started.output, () =>
    Promise.resolve(started.output().includes(`listening on port ${port}`)),
  );
  return started.child;
}

beforeAll(async () => {
  const port = await freePort();
  url = `http://127.0.0.1:${port}/mcp`;
  server = await start(port);
});

afterAll(async () => {
  await Promise.all(sets.map((s) => s.close()));
  await stopByPid(server);
});

describe('mcpTools() over Streamable HTTP (server-everything)', () => {
  it("runs an agent on the server's tools over one HTTP session", async () => {
    const set = mcpTools(
      { url, headers: { 'X-Client-Note': 'symphonizer-test' } },
      { name: 'everything-http', include: ['get-sum', 'echo'] },
    );
    sets.push(set);
    const provider = new ScriptedProvider('fake', (request, n) =>
      n === 1
        ? {
            toolCalls: [
              { name: 'get-sum', arguments: { a: 20, b: 22 } },
              { name: 'echo', arguments: { message: 'over http' } },
            ],
          }
        : request.messages
            .filter((m) => m.role === 'tool')
            .map((m) => m.content)
            .join(' | '),
    );
    const client = new ModelClient({ registry: new ProviderRegistry().register(provider) });
    const agent = chain({ input: z.object({}), model: 'fake:m', client })
      .agent('a', { prompt: () => 'go', tools: [set] })
      .build();
    const result = await agent.run({});
    expect(result.outputs.a).toBe('The sum of 20 and 22 is 42. | Echo: over http');
    expect(provider.requests[0]?.tools?.map((t) => t.name).sort()).toEqual(['echo', 'get-sum']);
    expect(set.connectionsOpened).toBe(1);
  });

  it('fails the node with a typed error naming the server once the server is gone', async () => {
    const set = mcpTools({ url }, { name: 'everything-http', include: ['echo'], timeoutMs: 3_000 });
    sets.push(set);
    expect((await set.tools()).map((t) => t.name)).toEqual(['echo']);
    expect(await set.call('echo', { message: 'first' })).toBe('Echo: first');
    await stopByPid(server);
    const provider = new ScriptedProvider('fake', () => ({
      toolCalls: [{ name: 'echo', arguments: { message: 'second' } }],
    }));
    const client = new ModelClient({ registry: new ProviderRegistry().register(provider) });
    const agent = chain({ input: z.object({}), model: 'fake:m', client })
      .agent('a', { prompt: () => 'go', tools: [set] })
      .build();
    const error = await agent.run({}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChainRunError);
    expect((error as ChainRunError).cause).toBeInstanceOf(McpUnavailableError);
    expect((error as ChainRunError).cause).toMatchObject({ server: 'everything-http', tool: 'echo' });
    expect((error as ChainRunError).message).toContain('could not reconnect');
    // Start it again on the same port for the other tests' afterAll.
    server = await start(Number(new URL(url).port));
  });
});
