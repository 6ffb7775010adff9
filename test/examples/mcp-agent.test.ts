// examples/mcp-agent.ts run as a script, offline: an agent on the simulated model calls a tool of the real
// server-everything over stdio, gets the server's answer back, and the process exits once the set is closed.
import { describe, expect, it } from 'vitest';
import { runExample } from './run-example.ts';

describe('examples/mcp-agent.ts', () => {
  it("calls a server-everything tool over stdio and answers from the tool's result, then exits", async () => {
    const { code, stdout, stderr } = await runExample('examples/mcp-agent.ts');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^model: sim:demo \(simulated/);
    const call = /^step 1: echo\((.*)\)$/m.exec(stdout);
    expect(call).not.toBeNull();
    const { message } = JSON.parse(call?.[1] ?? '') as { message: string };
    // The server's own answer to the arguments the model sent, and the answer built on it.
    expect(stdout).toContain(`  -> Echo: ${message}\n`);
    expect(stdout).toContain(`answer: [simulated] Based on the tool result (Echo: ${message})`);
    expect(stdout).toMatch(/^tool calls: 1$/m);
  });
});
