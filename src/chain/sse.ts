import type { ChainEvent } from './types.ts';
import { errorMessage } from '../core/errors.ts';

/**
 * Turns a chain's event stream into a web `ReadableStream` of server-sent events (`event: <type>` and
 * `data: <json>` per event), ready for `new Response(stream, { headers: { 'content-type': 'text/event-stream' } })`
 * or for piping to a Node response. Cancelling the stream stops reading the events.
 */
export function toServerSentEvents<O>(events: AsyncIterable<ChainEvent<O>>): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  const iterator = events[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await iterator.next();
        if (next.done === true) {
          controller.close();
          return;
        }
        controller.enqueue(encoder.encode(formatServerSentEvent(next.value.type, next.value)));
      } catch (error) {
        const message = errorMessage(error);
        controller.enqueue(encoder.encode(formatServerSentEvent('error', { type: 'error', message })));
        controller.close();
      }
    },
    async cancel() {
      await iterator.return?.();
    },
  });
}

/** One server-sent event; the data is JSON on a single line. */
export function formatServerSentEvent(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
