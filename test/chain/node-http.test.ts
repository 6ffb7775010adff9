/** toNodeHandler: a fetch-standard handler served from node:http, body and signal included. */
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { toNodeHandler } from '../../src/index.ts';

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

async function serve(handler: (request: Request) => Promise<Response>): Promise<string> {
  const server = createServer(toNodeHandler(handler));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('toNodeHandler', () => {
  it('passes method, URL, headers and body in, and status, headers (each cookie) and body out', async () => {
    let seen: { method: string; url: string; header: string | null; body: string } | undefined;
    const base = await serve(async (request) => {
      seen = {
        method: request.method,
        url: new URL(request.url).pathname + new URL(request.url).search,
        header: request.headers.get('x-test'),
        body: await request.text(),
      };
      const headers = new Headers({ 'content-type': 'text/plain' });
      headers.append('set-cookie', 'a=1');
      headers.append('set-cookie', 'b=2');
      return new Response('made', { status: 201, headers });
    });
    const res = await fetch(`${base}/api/chat?x=1`, {
      method: 'PUT',
      headers: { 'x-test': 'yes' },
      body: 'hello',
    });
    expect(res.status).toBe(201);
    expect(await res.text()).toBe('made');
    expect(res.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
    expect(seen).toEqual({ method: 'PUT', url: '/api/chat?x=1', header: 'yes', body: 'hello' });
  });

  it('aborts request.signal and cancels the body when the client goes away mid-response', async () => {
    let aborted = false;
    let cancelled = false;
    let signalled!: () => void;
    const gone = new Promise<void>((resolve) => {
      signalled = resolve;
    });
    const base = await serve((request) => {
      request.signal.addEventListener('abort', () => {
        aborted = true;
        signalled();
      });
      const body = new ReadableStream<Uint8Array>({
        pull: async (controller) => {
          await new Promise((resolve) => setTimeout(resolve, 20));
          controller.enqueue(new TextEncoder().encode('tick\n'));
        },
        cancel: () => {
          cancelled = true;
        },
      });
      return Promise.resolve(new Response(body));
    });
    const url = new URL(base);
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest({ host: url.hostname, port: url.port, path: '/' }, (res) => {
        res.once('data', () => {
          req.destroy(); // the client leaves after the first chunk
          resolve();
        });
      });
      req.on('error', () => undefined);
      req.on('close', () => undefined);
      setTimeout(() => {
        reject(new Error('no data'));
      }, 5000).unref();
      req.end();
    });
    await gone;
    expect(aborted).toBe(true);
    await expect.poll(() => cancelled).toBe(true);
  });

  it('answers 500 when the handler throws', async () => {
    const base = await serve(() => Promise.reject(new Error('boom')));
    const res = await fetch(base);
    expect(res.status).toBe(500);
    expect(await res.text()).not.toContain('boom');
  });
});
