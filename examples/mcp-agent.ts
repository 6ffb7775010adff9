/**
 * An agent node with the tools of an MCP server: the reference server `@modelcontextprotocol/server-everything`,
 * started as a child process and spoken to over stdio (offline: no network). On the simulated model the agent
 * calls the first tool once with sample arguments and then answers with placeholder text; with a real model
 * (see examples/model.ts) it decides which tools to call.
 *
 *   node examples/mcp-agent.ts [--question "What is 19 + 23? Then echo the answer."]
 *
 * Importing the module runs nothing and starts no server: the connection opens when the agent first lists
 * its tools, and `close()` ends the server.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { chain, mcpTools } from '../src/index.ts';
import { isMain } from './is-main.ts';
import { modelBanner, pickModel } from './model.ts';

/** The server's entry script, run with this Node. */
const everythingServer = fileURLToPath(
  import.meta.resolve('@modelcontextprotocol/server-everything/dist/index.js'),
);

/** Runs the agent on `question` and prints its tool calls and its answer. */
export async function main(question: string, model = pickModel()): Promise<void> {
  const everything = mcpTools(
    { command: process.execPath, args: [everythingServer, 'stdio'], stderr: 'ignore' },
    { name: 'everything', include: ['get-sum', 'echo'], timeoutMs: 10_000 },
  );
  const helper = chain({ name: 'mcp-agent', input: z.object({ question: z.string() }), model })
    .agent('helper', {
      system: 'Use the tools to compute and to echo; then answer in one sentence.',
      prompt: ({ input }) => input.question,
      tools: [everything],
      maxSteps: 4,
    })
    .build();
  console.log(modelBanner(model));
  try {
    const result = await helper.run(
      { question },
      {
        onEvent: (event) => {
          if (event.type === 'tool-call') {
            console.log(`step ${event.step}: ${event.toolName}(${JSON.stringify(event.input)})`);
          } else if (event.type === 'tool-result') {
            console.log(`  -> ${event.ok ? '' : '(error) '}${event.output}`);
          }
        },
      },
    );
    console.log(`answer: ${result.outputs.helper}`);
    console.log(`tool calls: ${(result.steps.helper ?? []).reduce((n, s) => n + s.toolCalls.length, 0)}`);
  } finally {
    await everything.close();
  }
}

if (isMain(import.meta)) {
  const { values } = parseArgs({
    options: { question: { type: 'string', default: 'What is 19 + 23? Then echo the answer.' } },
  });
  await main(values.question);
}
