// The `symphonizer` command, in process through main(), with a base URL that has credentials in it: refused
// before anything runs (exit 2, zero requests), and no URL's userinfo is ever printed.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { scrubbed } from '../../src/cli/output.ts';
import { checkEnvKey } from '../../src/cli/preflight.ts';
import { CredentialsInUrlError } from '../../src/providers/errors.ts';
import { startFakeProviderServer, type FakeProviderServer } from '../support/fake-provider-server.ts';
import { fakeKey } from '../helpers/fake-keys.ts';

const root = resolve(import.meta.dirname, '../..');
const fixtures = 'test/cli/fixtures';
// Built at run time, so no secret-looking literal sits in the repository.
const SECRET = `pw${randomBytes(12).toString('hex')}`;

let server: FakeProviderServer;
let store: string;

beforeAll(async () => {
  server = await startFakeProviderServer();
  store = mkdtempSync(join(tmpdir(), 'symphonizer-credentials-'));
});
afterAll(async () => {
  await server.close();
  rmSync(store, { recursive: true, force: true });
});
beforeEach(() => {
  server.reset();
  // The providers of the default registry read process.env; the command reads io.env: set both alike.
  for (const name of ['OPENAI_API_KEY', 'OPENAI_BASE_URL', 'ANTHROPIC_API_KEY', 'ANTHROPIC_BASE_URL'])
    vi.stubEnv(name, '');
});
afterEach(() => {
  vi.unstubAllEnvs();
});

interface Outcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function cli(args: readonly string[], env: Readonly<Record<string, string>>): Promise<Outcome> {
  for (const [name, value] of Object.entries(env)) vi.stubEnv(name, value);
  let stdout = '';
  let stderr = '';
  const code = await main(args, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env: { ...process.env, ...env },
    cwd: root,
  });
  return { code, stdout, stderr };
}

const withCredentials = (url: string): string => url.replace('://', `://user:${SECRET}@`);
const redacted = (url: string): string => url.replace('://', '://***@');

describe('symphonizer with credentials in a base URL', () => {
  it.each([
    { wire: 'openai', model: 'openai:gpt-x', baseEnv: 'OPENAI_BASE_URL', keyEnv: 'OPENAI_API_KEY' },
    {
      wire: 'anthropic',
      model: 'anthropic:claude-x',
      baseEnv: 'ANTHROPIC_BASE_URL',
      keyEnv: 'ANTHROPIC_API_KEY',
    },
  ])('run refuses $baseEnv before anything runs: exit 2, no request, no secret', async (c) => {
    const url = c.wire === 'openai' ? server.openaiBaseURL : server.anthropicBaseURL;
    const env = { [c.baseEnv]: withCredentials(url) };
    for (const json of [false, true]) {
      const args = ['run', `${fixtures}/report-chain.ts`, '--input', '{"topic":"tides"}', '--model', c.model];
      const r = await cli(json ? [...args, '--json'] : args, env);
      expect(r.code).toBe(2);
      expect(r.stdout + r.stderr).not.toContain(SECRET);
      expect(r.stderr).toContain('error [credentials_in_url]');
      expect(r.stderr).toContain(redacted(url));
      expect(r.stderr).toContain(c.model);
      expect(r.stderr).toMatch(new RegExp(`^hint: .*${c.keyEnv}`, 'm'));
      expect(r.stderr).toContain('Nothing was run');
    }
    expect(server.requests).toBe(0);
  });

  it('eval refuses it too, before any row runs', async () => {
    const r = await cli(
      [
        'eval',
        `${fixtures}/eval-chain.ts`,
        '--dataset',
        `${fixtures}/eval-dataset.jsonl`,
        '--model',
        'openai:gpt-x',
        '--store',
        join(store, 'eval.sqlite'),
        '--json',
      ],
      {
        OPENAI_BASE_URL: withCredentials(server.openaiBaseURL),
        OPENAI_API_KEY: fakeKey('test', 'cli0123456789'),
      },
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('error [credentials_in_url]');
    expect(r.stdout + r.stderr).not.toContain(SECRET);
    expect(server.requests).toBe(0);
  });

  it('a failure quoting a URL with credentials is printed redacted: stderr, trace and --json', async () => {
    const url = withCredentials('https://proxy.example:8443/path');
    for (const json of [false, true]) {
      const args = ['run', `${fixtures}/url-leaky-chain.ts`];
      const r = await cli(json ? [...args, '--json'] : args, { SYMPHONIZER_TEST_URL: url });
      expect(r.code).toBe(1);
      expect(r.stdout + r.stderr).not.toContain(SECRET);
      expect(r.stdout + r.stderr).toContain('could not reach https://***@proxy.example:8443/path');
      if (json) {
        const parsed = JSON.parse(r.stdout) as { error: { message: string }; trace: unknown[] };
        expect(parsed.error.message).toContain('https://***@proxy.example:8443/path');
        expect(JSON.stringify(parsed.trace)).toContain('https://***@proxy.example:8443/path');
      } else {
        expect(r.stderr).toMatch(/^ {2}fetch error .*https:\/\/\*\*\*@proxy\.example:8443\/path/m);
      }
    }
  });
});

describe('scrubbed()', () => {
  it('redacts the userinfo of any URL written, and the password of a URL-valued variable anywhere', () => {
    let out = '';
    const stream = scrubbed(
      { write: (s: string) => (out += s) },
      { MY_PROXY: `http://me:${SECRET}@proxy.local:3128` },
    );
    stream.write(`via http://me:${SECRET}@proxy.local:3128 and ftp://anon@files.local/x\n`);
    stream.write(`decoded: ${SECRET}\n`);
    expect(out).toBe('via http://***@proxy.local:3128 and ftp://***@files.local/x\ndecoded: [REDACTED]\n');
  });
});

describe('checkEnvKey()', () => {
  it('refuses a base URL variable with credentials, key or no key, naming the variables', () => {
    for (const env of [
      { OPENAI_BASE_URL: withCredentials('http://127.0.0.1:1/v1') },
      { OPENAI_BASE_URL: withCredentials('https://api.openai.com/v1'), OPENAI_API_KEY: fakeKey('test', 'x') },
    ]) {
      let caught: unknown;
      try {
        checkEnvKey('openai', env);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(CredentialsInUrlError);
      expect(caught).toMatchObject({ setting: 'OPENAI_BASE_URL', keyEnvVar: 'OPENAI_API_KEY' });
      expect(JSON.stringify(caught) + String(caught)).not.toContain(SECRET);
    }
    expect(() => {
      checkEnvKey('anthropic', { ANTHROPIC_BASE_URL: withCredentials('http://127.0.0.1:1') });
    }).toThrow(/ANTHROPIC_BASE_URL/);
    expect(() => {
      checkEnvKey('anthropic', { ANTHROPIC_BASE_URL: 'http://127.0.0.1:1' });
    }).not.toThrow();
  });
});
