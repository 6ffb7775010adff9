/**
 * Serves a fetch-standard handler (`(request: Request) => Promise<Response>`, e.g. {@link createChatHandler})
 * from `node:http`: the request becomes a `Request` whose body streams from the socket and whose `signal`
 * aborts when the client goes away; the `Response` is written with backpressure, and its body is cancelled
 * when the client goes away.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * A `node:http` request listener that answers with `handler`.
 *
 * @example
 * ```ts
 * createServer(toNodeHandler(createChatHandler({ chain, input: (messages) => ({ messages }) }))).listen(3000);
 * ```
 */
export function toNodeHandler(
  handler: (request: Request) => Promise<Response>,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    void serve(handler, req, res);
  };
}

async function serve(
  handler: (request: Request) => Promise<Response>,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const gone = new AbortController();
  const body: { reader?: ReadableStreamDefaultReader<Uint8Array> } = {};
  res.on('close', () => {
    if (res.writableFinished) return;
    gone.abort(new Error('The client closed the connection.'));
    void body.reader?.cancel().catch(() => undefined);
  });
  let response: Response;
  try {
    response = await handler(toRequest(req, gone.signal));
  } catch {
    if (!res.headersSent && !res.destroyed) res.writeHead(500, { 'content-type': 'text/plain' });
    res.end('Internal error\n');
    return;
  }
  if (res.destroyed) {
    await response.body?.cancel().catch(() => undefined);
    return;
  }
  const headers: string[] = [];
  for (const [name, value] of response.headers) {
    if (name !== 'set-cookie') headers.push(name, value);
  }
  for (const cookie of response.headers.getSetCookie()) headers.push('set-cookie', cookie);
  res.writeHead(response.status, headers);
  if (response.body === null) {
    res.end();
    return;
  }
  const reader = (body.reader = response.body.getReader());
  try {
    for (;;) {
      const next = await reader.read();
      if (next.done) break;
      if (!res.write(next.value)) {
        await new Promise<void>((resolve) => {
          res.once('drain', resolve);
          res.once('close', resolve);
        });
      }
      if (isGone(res)) return;
    }
  } catch {
    // The body failed or was cancelled because the client went away: end what was sent.
  }
  if (!isGone(res)) res.end();
}

/** True once the response's socket is gone (read afresh: it changes across awaits). */
function isGone(res: ServerResponse): boolean {
  return res.destroyed;
}

function toRequest(req: IncomingMessage, signal: AbortSignal): Request {
  const headers = new Headers();
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    headers.append(req.rawHeaders[i] as string, req.rawHeaders[i + 1] as string);
  }
  let url: URL;
  try {
    url = new URL(req.url ?? '/', `http://${req.headers.host ?? 'localhost'}`);
  } catch {
    url = new URL('http://localhost/');
  }
  const method = req.method ?? 'GET';
  const hasBody = method !== 'GET' && method !== 'HEAD';
  return new Request(url, {
    method,
    headers,
    signal,
    ...(hasBody ? { body: bodyOf(req), duplex: 'half' as const } : {}),
  });
}

/**
 * The request body as a web stream, read as it is pulled: the socket is paused while the stream's queue is
 * full, so a handler that stops reading (a body over its limit) stops the upload too.
 */
function bodyOf(req: IncomingMessage): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        req.on('data', (chunk: Buffer) => {
          controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
          if ((controller.desiredSize ?? 0) <= 0) req.pause();
        });
        req.once('end', () => {
          controller.close();
        });
        req.once('error', (error) => {
          controller.error(error);
        });
        req.pause();
      },
      pull() {
        req.resume();
      },
      cancel() {
        req.removeAllListeners('data');
        req.pause();
      },
    },
    { highWaterMark: 64 * 1024, size: (chunk) => chunk.byteLength },
  );
}
