// The chat server in-process on a loopback port (plus one run as a script). The `sim:echo` model answers
// with the whole prompt it was sent, so an answer shows exactly what the chain's input held.
import { spawn } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createChatServer } from '../../examples/chatbot-server.ts';
import { offlineEnv, slow } from './run-example.ts';

interface SseEvent {
  readonly event: string;
  readonly data: { readonly type: string; readonly text?: string; readonly status?: string };
}

const server = createChatServer({ model: 'sim:echo' });
let base = '';

beforeAll(async () => {
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((done) => server.close(done));
});

/** POSTs one message and reads the whole SSE response. */
async function send(conversationId: string, message: string) {
  const res = await fetch(`${base}/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ conversationId, message }),
  });
  const body = await res.text();
  const events: SseEvent[] = body
    .split('\n\n')
    .filter((block) => block.trim() !== '')
    .map((block) => {
      const [eventLine = '', dataLine = ''] = block.split('\n');
      return {
        event: eventLine.replace(/^event: /, ''),
        data: JSON.parse(dataLine.replace(/^data: /, '')) as SseEvent['data'],
      };
    });
  const answer = events.flatMap((e) => (e.data.type === 'token' ? [e.data.text ?? ''] : [])).join('');
  return { res, events, answer };
}

describe('examples/chatbot-server.ts', () => {
  it('serves the chat page at /', async () => {
    const res = await fetch(`${base}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).toContain('<form');
    expect(html).toContain("fetch('/chat'");
    expect(html).toContain('getReader()');
  });

  it('streams the answer as server-sent events: tokens, then chain-done', async () => {
    const { res, events, answer } = await send('first', 'Hello there, my name is Ada.');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    expect(events[0]?.event).toBe('chain-start');
    expect(events.filter((e) => e.event === 'token').length).toBeGreaterThan(1);
    expect(events.at(-1)).toMatchObject({
      event: 'chain-done',
      data: { type: 'chain-done', status: 'completed' },
    });
    expect(answer).toContain('The user now says: Hello there, my name is Ada.');
    expect(answer).not.toContain('The conversation so far');
  });

  it('passes the earlier turns of the same conversation, and only of it, to the chain', async () => {
    await send('memory', 'My favourite colour is teal.');
    const second = await send('memory', 'What is my favourite colour?');
    expect(second.answer).toContain('The conversation so far:');
    expect(second.answer).toContain('user: My favourite colour is teal.');
    expect(second.answer).toMatch(/assistant: \[simulated\] .*My favourite colour is teal\./);
    expect(second.answer).toContain('The user now says: What is my favourite colour?');
    const other = await send('someone-else', 'What is my favourite colour?');
    expect(other.answer).not.toContain('teal');
  });

  it('refuses a malformed request with 400 and unknown paths with 404', async () => {
    const bad = await fetch(`${base}/chat`, { method: 'POST', body: '{"message": ""}' });
    expect(bad.status).toBe(400);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
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
