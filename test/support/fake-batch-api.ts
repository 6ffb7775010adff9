/**
 * The Batch APIs of the fake provider server, in both wire formats, as the official SDKs call them:
 * OpenAI `/v1/files` (multipart JSONL upload, `GET /v1/files/{id}/content`) and `/v1/batches`
 * (create, retrieve, cancel; output and error files as JSONL); Anthropic `/v1/messages/batches` (create,
 * retrieve, cancel, `results` as JSONL). A batch ends after a simulated turnaround (a number of polls and/or
 * milliseconds); each item is answered as the server answers the same request online.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

type JsonObject = Record<string, unknown>;

/** When a batch ends: at the first retrieve that is at least `polls`-th and at least `ms` after creation. */
export interface FakeBatchTurnaround {
  /** @default 1 */
  polls?: number | undefined;
  /** @default 0 */
  ms?: number | undefined;
}

/** Behaviour of the batch endpoints, settable at any time. */
export interface FakeBatchOptions {
  turnaround?: FakeBatchTurnaround | undefined;
  /**
   * An item whose custom id this returns a message for fails: a 500 (or the given status) in OpenAI's error
   * file, `errored` for Anthropic (`api_error`, or `invalid_request_error` for a 400).
   */
  failItem?: ((customId: string) => string | { status: number; message: string } | undefined) | undefined;
}

/** Counters of the batch endpoints since the server started (or `reset()`). */
export interface FakeBatchCounts {
  filesUploaded: number;
  fileDownloads: number;
  batchesCreated: number;
  polls: number;
  resultsFetched: number;
  cancels: number;
  /** Items submitted in all batches. */
  itemsSubmitted: number;
  /** How often each custom id was submitted (a resumed run must never submit one twice). */
  readonly submissions: Map<string, number>;
}

/** The batch part of a fake server. */
export interface FakeBatchApi {
  readonly options: FakeBatchOptions;
  readonly counts: FakeBatchCounts;
  /** True when `method url` is a batch endpoint. */
  matches(method: string | undefined, url: string | undefined): boolean;
  /** Answers a batch request (`raw` is the request body as read). */
  handle(req: IncomingMessage, raw: string, res: ServerResponse): Promise<void>;
  reset(): void;
}

/** Answers one item as the server answers the same request online: the response body. */
export type FakeItemAnswer = (api: 'openai' | 'anthropic', body: JsonObject) => Promise<JsonObject>;

interface FakeBatch {
  readonly api: 'openai' | 'anthropic';
  readonly id: string;
  readonly createdAt: number;
  readonly items: readonly { readonly customId: string; readonly body: JsonObject }[];
  readonly inputFileId: string | undefined;
  polls: number;
  status: 'in_progress' | 'ended' | 'cancelled';
  outputFileId: string | undefined;
  errorFileId: string | undefined;
  results: string | undefined;
  succeeded: number;
  errored: number;
}

/**
 * The batch endpoints. `baseUrl()` is the server's `http://127.0.0.1:<port>` (Anthropic's `results_url`
 * points at it); `answer` answers one item.
 */
export function createFakeBatchApi(
  baseUrl: () => string,
  answer: FakeItemAnswer,
  initial: FakeBatchOptions = {},
): FakeBatchApi {
  const options: FakeBatchOptions = { ...initial };
  const fresh = (): FakeBatchCounts => ({
    filesUploaded: 0,
    fileDownloads: 0,
    batchesCreated: 0,
    polls: 0,
    resultsFetched: 0,
    cancels: 0,
    itemsSubmitted: 0,
    submissions: new Map(),
  });
  let counts = fresh();
  const files = new Map<string, string>();
  const batches = new Map<string, FakeBatch>();
  let next = 0;

  const send = (res: ServerResponse, status: number, payload: unknown, type = 'application/json'): void => {
    res.writeHead(status, { 'content-type': type, 'x-request-id': `req_batch_${++next}` });
    res.end(typeof payload === 'string' ? payload : JSON.stringify(payload));
  };
  const notFound = (res: ServerResponse, api: 'openai' | 'anthropic', what: string): void => {
    send(
      res,
      404,
      api === 'openai'
        ? { error: { message: `No such ${what}`, type: 'invalid_request_error', param: null, code: null } }
        : { type: 'error', error: { type: 'not_found_error', message: `No such ${what}` } },
    );
  };

  const submitted = (customId: string): void => {
    counts.itemsSubmitted++;
    counts.submissions.set(customId, (counts.submissions.get(customId) ?? 0) + 1);
  };

  /** Ends the batch when its turnaround has passed, answering every item. */
  async function advance(batch: FakeBatch): Promise<void> {
    batch.polls++;
    if (batch.status !== 'in_progress') return;
    const polls = options.turnaround?.polls ?? 1;
    const ms = options.turnaround?.ms ?? 0;
    if (batch.polls < polls || Date.now() - batch.createdAt < ms) return;
    const out: string[] = [];
    const errors: string[] = [];
    for (const item of batch.items) {
      const failed = options.failItem?.(item.customId);
      if (failed !== undefined) {
        const failure = typeof failed === 'string' ? failed : failed.message;
        const status = typeof failed === 'string' ? 500 : failed.status;
        const type = status === 400 ? 'invalid_request_error' : 'api_error';
        batch.errored++;
        errors.push(
          batch.api === 'openai'
            ? JSON.stringify({
                id: `batch_req_${++next}`,
                custom_id: item.customId,
                response: {
                  status_code: status,
                  request_id: `req_${next}`,
                  body: { error: { message: failure } },
                },
                error: null,
              })
            : JSON.stringify({
                custom_id: item.customId,
                result: { type: 'errored', error: { type: 'error', error: { type, message: failure } } },
              }),
        );
        continue;
      }
      const body = await answer(batch.api, item.body);
      batch.succeeded++;
      out.push(
        batch.api === 'openai'
          ? JSON.stringify({
              id: `batch_req_${++next}`,
              custom_id: item.customId,
              response: { status_code: 200, request_id: `req_${next}`, body },
              error: null,
            })
          : JSON.stringify({ custom_id: item.customId, result: { type: 'succeeded', message: body } }),
      );
    }
    batch.status = 'ended';
    if (batch.api === 'openai') {
      if (out.length > 0) {
        batch.outputFileId = `file-out-${++next}`;
        files.set(batch.outputFileId, out.join('\n') + '\n');
      }
      if (errors.length > 0) {
        batch.errorFileId = `file-err-${++next}`;
        files.set(batch.errorFileId, errors.join('\n') + '\n');
      }
    } else batch.results = [...out, ...errors].join('\n') + '\n';
  }

  function openaiBatch(batch: FakeBatch): JsonObject {
    const ended = batch.status !== 'in_progress';
    return {
      id: batch.id,
      object: 'batch',
      endpoint: '/v1/chat/completions',
      errors: null,
      input_file_id: batch.inputFileId,
      completion_window: '24h',
      status: batch.status === 'ended' ? 'completed' : batch.status,
      output_file_id: batch.outputFileId ?? null,
      error_file_id: batch.errorFileId ?? null,
      created_at: Math.floor(batch.createdAt / 1000),
      in_progress_at: Math.floor(batch.createdAt / 1000),
      expires_at: Math.floor(batch.createdAt / 1000) + 86_400,
      completed_at: ended ? Math.floor(Date.now() / 1000) : null,
      request_counts: {
        total: batch.items.length,
        completed: batch.succeeded,
        failed: batch.errored,
      },
      metadata: null,
    };
  }

  function anthropicBatch(batch: FakeBatch): JsonObject {
    const ended = batch.status !== 'in_progress';
    const cancelled = batch.status === 'cancelled';
    return {
      id: batch.id,
      type: 'message_batch',
      processing_status: ended ? 'ended' : 'in_progress',
      request_counts: {
        processing: ended ? 0 : batch.items.length,
        succeeded: batch.succeeded,
        errored: batch.errored,
        canceled: cancelled ? batch.items.length - batch.succeeded - batch.errored : 0,
        expired: 0,
      },
      ended_at: ended ? new Date().toISOString() : null,
      created_at: new Date(batch.createdAt).toISOString(),
      expires_at: new Date(batch.createdAt + 86_400_000).toISOString(),
      archived_at: null,
      cancel_initiated_at: cancelled ? new Date().toISOString() : null,
      results_url: ended ? `${baseUrl()}/v1/messages/batches/${batch.id}/results` : null,
    };
  }

  async function handle(req: IncomingMessage, raw: string, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const api = path.startsWith('/v1/messages/batches') ? 'anthropic' : 'openai';
    if (method === 'POST' && path === '/v1/files') {
      const content = multipartFile(raw, req.headers['content-type'] ?? '');
      if (content === undefined) {
        send(res, 400, { error: { message: 'No file in the upload.', type: 'invalid_request_error' } });
        return;
      }
      counts.filesUploaded++;
      const id = `file-${++next}`;
      files.set(id, content);
      send(res, 200, {
        id,
        object: 'file',
        bytes: Buffer.byteLength(content),
        created_at: Math.floor(Date.now() / 1000),
        filename: 'batch.jsonl',
        purpose: 'batch',
        status: 'processed',
      });
      return;
    }
    const fileContent = /^\/v1\/files\/([^/]+)\/content$/.exec(path);
    if (method === 'GET' && fileContent !== null) {
      const content = files.get(fileContent[1] ?? '');
      if (content === undefined) {
        notFound(res, 'openai', 'file');
        return;
      }
      counts.fileDownloads++;
      send(res, 200, content, 'application/octet-stream');
      return;
    }
    if (method === 'POST' && path === '/v1/batches') {
      const body = JSON.parse(raw) as JsonObject;
      const input = files.get(String(body['input_file_id']));
      if (input === undefined) {
        notFound(res, 'openai', 'input file');
        return;
      }
      const items = input
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => {
          const entry = JSON.parse(line) as JsonObject;
          return { customId: String(entry['custom_id']), body: entry['body'] as JsonObject };
        });
      for (const item of items) submitted(item.customId);
      const batch = newBatch('openai', `batch_${++next}`, items, String(body['input_file_id']));
      send(res, 200, openaiBatch(batch));
      return;
    }
    const openai = /^\/v1\/batches\/([^/]+)(\/cancel)?$/.exec(path);
    if (openai !== null) {
      const batch = batches.get(openai[1] ?? '');
      if (batch === undefined) {
        notFound(res, 'openai', 'batch');
        return;
      }
      if (openai[2] !== undefined) {
        counts.cancels++;
        if (batch.status === 'in_progress') batch.status = 'cancelled';
      } else {
        counts.polls++;
        await advance(batch);
      }
      send(res, 200, openaiBatch(batch));
      return;
    }
    if (method === 'POST' && path === '/v1/messages/batches') {
      const body = JSON.parse(raw) as { requests?: { custom_id: string; params: JsonObject }[] };
      const items = (body.requests ?? []).map((r) => ({ customId: r.custom_id, body: r.params }));
      for (const item of items) submitted(item.customId);
      const batch = newBatch('anthropic', `msgbatch_${++next}`, items, undefined);
      send(res, 200, anthropicBatch(batch));
      return;
    }
    const anthropic = /^\/v1\/messages\/batches\/([^/]+)(\/cancel|\/results)?$/.exec(path);
    if (anthropic !== null) {
      const batch = batches.get(anthropic[1] ?? '');
      if (batch === undefined) {
        notFound(res, 'anthropic', 'message batch');
        return;
      }
      if (anthropic[2] === '/results') {
        if (batch.results === undefined) {
          notFound(res, 'anthropic', 'results (the batch is in progress)');
          return;
        }
        counts.resultsFetched++;
        send(res, 200, batch.results, 'application/binary');
        return;
      }
      if (anthropic[2] === '/cancel') {
        counts.cancels++;
        if (batch.status === 'in_progress') {
          batch.status = 'cancelled';
          batch.results = '';
        }
      } else {
        counts.polls++;
        await advance(batch);
      }
      send(res, 200, anthropicBatch(batch));
      return;
    }
    notFound(res, api, `endpoint ${method} ${path}`);
  }

  function newBatch(
    api: 'openai' | 'anthropic',
    id: string,
    items: FakeBatch['items'],
    inputFileId: string | undefined,
  ): FakeBatch {
    counts.batchesCreated++;
    const batch: FakeBatch = {
      api,
      id,
      createdAt: Date.now(),
      items,
      inputFileId,
      polls: 0,
      status: 'in_progress',
      outputFileId: undefined,
      errorFileId: undefined,
      results: undefined,
      succeeded: 0,
      errored: 0,
    };
    batches.set(id, batch);
    return batch;
  }

  return {
    options,
    get counts() {
      return counts;
    },
    matches(method, url) {
      const path = (url ?? '').split('?')[0] ?? '';
      if (path === '/v1/files' || path.startsWith('/v1/files/')) return true;
      if (path === '/v1/batches' || path.startsWith('/v1/batches/')) return true;
      return (method === 'GET' || method === 'POST') && path.startsWith('/v1/messages/batches');
    },
    handle,
    reset() {
      counts = fresh();
      files.clear();
      batches.clear();
    },
  };
}

/** The `file` part of a multipart/form-data body (as the SDK's `files.create` sends it). */
function multipartFile(raw: string, contentType: string): string | undefined {
  const boundary = /boundary=("?)([^";]+)\1/.exec(contentType)?.[2];
  if (boundary === undefined) return undefined;
  for (const part of raw.split(`--${boundary}`)) {
    const split = part.indexOf('\r\n\r\n');
    if (split < 0) continue;
    const head = part.slice(0, split);
    if (!/name="file"/.test(head)) continue;
    return part.slice(split + 4).replace(/\r\n$/, '');
  }
  return undefined;
}
