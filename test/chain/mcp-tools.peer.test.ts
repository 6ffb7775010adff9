/**
 * `@modelcontextprotocol/sdk` is an optional peer: importing `symphonizer` or `symphonizer/chain` (and
 * defining an MCP tool set) loads none of it; without it, listing the tools fails with
 * `missing_peer_dependency` naming the package. Each case runs in a fresh Node process whose module
 * hooks record (or refuse) the SDK's modules.
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');

/** Runs `body` as an ES module in a fresh Node with a resolve hook; `refuse` makes the SDK unresolvable. */
function probe(body: string, refuse: boolean): Promise<string> {
  const script = `
    import { registerHooks } from 'node:module';
    const seen = [];
    registerHooks({
      resolve(specifier, context, next) {
        if (specifier.startsWith('@modelcontextprotocol/sdk')) {
          seen.push(specifier);
          if (${String(refuse)}) {
            throw Object.assign(new Error('Cannot find package ' + specifier), { code: 'ERR_MODULE_NOT_FOUND' });
          }
        }
        return next(specifier, context);
      },
    });
    ${body}
  `;
  return new Promise((done, fail) => {
    execFile(
      process.execPath,
      ['--input-type=module', '-e', script],
      { cwd: root },
      (error, stdout, stderr) => {
        if (error !== null) fail(new Error(`${error.message}\n${stderr}`));
        else done(stdout.trim());
      },
    );
  });
}

describe('the MCP SDK as an optional peer', () => {
  it('is not loaded by importing symphonizer or symphonizer/chain, nor by defining a tool set', async () => {
    const out = await probe(
      `
      const root = await import('./src/index.ts');
      await import('./src/chain/index.ts');
      const set = root.mcpTools({ command: 'some-server' }, { name: 'lazy' });
      console.log(JSON.stringify({ seen, name: set.name, opened: set.connectionsOpened }));
      `,
      false,
    );
    expect(JSON.parse(out)).toEqual({ seen: [], name: 'lazy', opened: 0 });
  });

  it('is loaded on first use; when it is missing, listing fails with missing_peer_dependency naming it', async () => {
    const out = await probe(
      `
      const { mcpTools } = await import('./src/index.ts');
      const set = mcpTools({ command: process.execPath, args: ['test/support/mcp-fault-server.ts'] });
      const error = await set.tools().catch((e) => e);
      console.log(JSON.stringify({ seen: seen.length > 0, code: error.code, packageName: error.packageName, message: error.message }));
      `,
      true,
    );
    const result = JSON.parse(out) as Record<string, unknown>;
    expect(result).toMatchObject({
      seen: true,
      code: 'missing_peer_dependency',
      packageName: '@modelcontextprotocol/sdk',
    });
    expect(result['message']).toContain('npm install @modelcontextprotocol/sdk');
  });
});
