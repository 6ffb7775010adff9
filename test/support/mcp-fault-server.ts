// A tiny MCP server on the SDK's server API, over stdio, with tools that misbehave on request:
//   echo { text }     answers the text
//   slow { ms }       answers after `ms` milliseconds (for timeouts); a cancelled call stops waiting
//   cancelled {}      answers how many slow calls the client cancelled
//   crash {}          exits the process mid-call (for reconnects)
//   bad_result {}     answers a result that is not a CallToolResult (content is not an array)
//   fail {}           answers a result flagged isError
//   weather { city }  answers structured content
//   env { name }      answers the value of an environment variable
//   dotted.name {}    a name providers refuse (the agent sees dotted_name)
//   refs { x }        a schema with draft-07 `definitions` and `$ref`
//   pid {}            answers the server's process id
//   grow {}           adds the tool `late` and sends notifications/tools/list_changed
// Started by the tests as `node test/support/mcp-fault-server.ts`; each start prints `started <pid>` on
// stderr, so a test can count starts.
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';

const object = (properties: Record<string, unknown>, required: string[] = []): Record<string, unknown> => ({
  type: 'object',
  properties,
  required,
  additionalProperties: false,
});

const tools = [
  {
    name: 'echo',
    description: 'Answers the text.',
    inputSchema: object({ text: { type: 'string' } }, ['text']),
  },
  {
    name: 'slow',
    description: 'Answers after a delay.',
    inputSchema: object({ ms: { type: 'integer', minimum: 0 } }, ['ms']),
  },
  { name: 'cancelled', description: 'How many slow calls were cancelled.', inputSchema: object({}) },
  { name: 'crash', description: 'Exits the server mid-call.', inputSchema: object({}) },
  { name: 'bad_result', description: 'Answers a malformed result.', inputSchema: object({}) },
  { name: 'fail', description: 'Answers an error result.', inputSchema: object({}) },
  {
    name: 'weather',
    description: 'Weather of a city, as structured content.',
    inputSchema: object({ city: { type: 'string', enum: ['Oslo', 'Lima'] } }, ['city']),
  },
  {
    name: 'env',
    description: 'Answers an environment variable.',
    inputSchema: object({ name: { type: 'string' } }, ['name']),
  },
  { name: 'pid', description: "Answers the server's process id.", inputSchema: object({}) },
  { name: 'dotted.name', description: 'Has a dot in its name.', inputSchema: object({}) },
  {
    name: 'refs',
    description: 'Answers x, whose schema is a $ref.',
    inputSchema: {
      ...object({ x: { $ref: '#/definitions/word' } }, ['x']),
      definitions: { word: { type: 'string' } },
    },
  },
  { name: 'grow', description: 'Adds the tool "late".', inputSchema: object({}) },
];

// The low-level Server, not McpServer: McpServer would refuse to send the malformed result of bad_result.
// eslint-disable-next-line @typescript-eslint/no-deprecated -- see above
const server = new Server(
  { name: 'mcp-fault-server', version: '1.0.0' },
  { capabilities: { tools: { listChanged: true } } },
);

server.setRequestHandler(ListToolsRequestSchema, () => ({ tools }));

const text = (value: string): { content: { type: 'text'; text: string }[] } => ({
  content: [{ type: 'text', text: value }],
});

let cancelled = 0;

server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
  const args = request.params.arguments ?? {};
  switch (request.params.name) {
    case 'echo':
      return text(String(args['text']));
    case 'slow':
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Number(args['ms']));
        extra.signal.addEventListener('abort', () => {
          cancelled += 1;
          clearTimeout(timer);
          resolve();
        });
      });
      return text('slow done');
    case 'cancelled':
      return text(String(cancelled));
    case 'crash':
      process.exit(3);
      break;
    case 'bad_result':
      return { content: 'not an array' };
    case 'fail':
      return { ...text('the weather service is down'), isError: true };
    case 'weather':
      return {
        ...text('(structured)'),
        structuredContent: { city: args['city'], celsius: args['city'] === 'Oslo' ? 4 : 19 },
      };
    case 'env':
      return text(process.env[String(args['name'])] ?? '(unset)');
    case 'dotted.name':
      return text('dotted here');
    case 'refs':
      return text(`x is ${JSON.stringify(args['x'])}`);
    case 'pid':
      return text(String(process.pid));
    case 'grow':
      if (!tools.some((t) => t.name === 'late')) {
        tools.push({ name: 'late', description: 'Added by grow.', inputSchema: object({}) });
      }
      await server.sendToolListChanged();
      return text('grown');
    case 'late':
      return text('late here');
  }
  return { ...text(`unknown tool ${request.params.name}`), isError: true };
});

process.stderr.write(`started ${process.pid}\n`);
await server.connect(new StdioServerTransport());
