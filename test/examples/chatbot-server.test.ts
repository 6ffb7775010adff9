// The chat server in-process on a loopback port (plus one run as a script). Its simulated model is scripted
// to read back the messages it was sent (role: text, one per line), so an answer shows exactly what reached
// the model. The page itself is driven in a real browser by chat-browser.test.ts.
import { spawn } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createChatServer } from '../../examples/chatbot-server.ts';
import type { ModelRequest } from '../../src/index.ts';
import { offlineEnv, slow } from './run-example.ts';

interface Part {
  readonly type: string;
  readonly delta?: string;
  readonly data?: { readonly node: string; readonly status: string };
}

/** The scripted model's answer: every message it was sent. */
const readBack = (request: ModelRequest): string =>
  request.messages.map((m) => `${m.role}: ${m.content}`).join('\n');

const { server, handler } = createChatServer({
  model: 'sim:demo',
  tokenDelayMs: 0,
  simulated: { script: [{ match: '', reply: readBack }] },
});
let base = '';

beforeAll(async () => {
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((done) => server.close(done));
});

type Turn = { role: 'user' | 'assistant'; text: string };

/** POSTs a conversation as useChat does and reads the whole UI message stream. */
async function send(id: string, turns: readonly Turn[]) {
  const res = await fetch(`${base}/api/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      id,
      messages: turns.map((t, i) => ({ id: `m${i}`, role: t.role, parts: [{ type: 'text', text: t.text }] })),
    }),
  });
  const body = await res.text();
  const parts: Part[] = body
    .split('\n\n')
    .filter((block) => block.startsWith('data: {'))
    .map((block) => JSON.parse(block.slice(6)) as Part);
  const answer = parts.flatMap((p) => (p.type === 'text-delta' ? [p.delta ?? ''] : [])).join('');
  return { res, body, parts, answer };
}

describe('examples/chatbot-server.ts', () => {
  it('serves the static page at / under a strict Content-Security-Policy', async () => {
    const res = await fetch(`${base}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toMatch(/script-src 'sha256-[A-Za-z0-9+/=]+'/);
    expect(csp).not.toContain('unsafe-inline');
    const html = await res.text();
    expect(html).toContain('<form');
    expect(html).toContain("fetch('/api/chat'");
    expect(html).toContain('getReader()');
    expect(html).toContain('overflow-wrap: anywhere');
    // Model text goes in as text only.
    expect(html).not.toMatch(/innerHTML|insertAdjacentHTML|outerHTML|document\.write/);
  });

  it('streams the answer as the UI message stream: progress per node, then the draft token by token', async () => {
    const { res, body, parts, answer } = await send('first', [
      { role: 'user', text: 'Hello there, my name is Ada.' },
    ]);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-vercel-ai-ui-message-stream')).toBe('v1');
    expect(parts[0]?.type).toBe('start');
    expect(
      parts.filter((p) => p.type === 'data-node').map((p) => `${p.data?.node} ${p.data?.status}`),
    ).toEqual(['research running', 'research completed', 'draft running', 'draft completed']);
    expect(parts.filter((p) => p.type === 'text-delta').length).toBeGreaterThan(3);
    expect(parts.at(-1)?.type).toBe('finish');
    expect(body.endsWith('data: [DONE]\n\n')).toBe(true);
    // One message: the template's user part (the research notes, then the new turn); no history yet.
    expect(answer).toMatch(
      /^user: Notes for the answer: user: Hello there, my name is Ada\.\n\nHello there, my name is Ada\.$/,
    );
    expect(handler.running).toBe(0);
  });

  it('passes the turns the client sent, and only those, to the chain', async () => {
    const first = await send('memory', [{ role: 'user', text: 'My favourite colour is teal.' }]);
    const second = await send('memory', [
      { role: 'user', text: 'My favourite colour is teal.' },
      { role: 'assistant', text: first.answer },
      { role: 'user', text: 'What is my favourite colour?' },
    ]);
    // The earlier turns reached the model as real messages, before the new user turn.
    const lines = second.answer.split('\n');
    expect(lines[0]).toBe('user: My favourite colour is teal.');
    expect(second.answer).toContain(`assistant: ${first.answer}`);
    expect(second.answer).toMatch(/\n\nWhat is my favourite colour\?$/);
    // The same chat id without the history: the server kept nothing to add.
    const other = await send('memory', [{ role: 'user', text: 'What is my favourite colour?' }]);
    expect(other.answer).not.toContain('teal');
  });

  it('refuses a malformed request with a short JSON 400, and unknown paths with 404', async () => {
    const bad = await fetch(`${base}/api/chat`, { method: 'POST', body: '{"message": ""}' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({
      error: { code: 'invalid_request', message: 'The body must have a `messages` array.' },
    });
    expect((await fetch(`${base}/nope`)).status).toBe(404);
  });

  it('refuses a body over the limit with 413', async () => {
    const res = await fetch(`${base}/api/chat`, { method: 'POST', body: 'x'.repeat(2 * 1024 * 1024) });
    expect(res.status).toBe(413);
  });

  it('listens and prints its URL when run as a script', slow, async () => {
    const child = spawn(process.execPath, ['examples/chatbot-server.ts'], {
      cwd: resolve(import.meta.dirname, '../..'),
      env: { ...offlineEnv, PORT: '' },
    });
    try {
      let out = '';
      const url = await new Promise<string>((done, fail) => {
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          const match = /chat server: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
          if (match) done(match[1]!);
        });
        child.on('exit', (code) => {
          fail(new Error(`exited with ${String(code)}: ${out}`));
        });
      });
      expect(out).toMatch(/^model: sim:demo \(simulated/);
      expect((await fetch(url)).status).toBe(200);
    } finally {
      child.kill();
    }
  });
});
