/**
 * The chat handler on loopback (bench/chat-workload.ts): a burst of 1,000 concurrent requests against a
 * 250 ms simulated model (how many get 200 and 503, the slowest answer), then 5,000 conversations 64 at a
 * time against a 50 ms one (RSS after each 1,000, after a
 * forced GC when run with --expose-gc, as `npm run bench` does).
 *
 *   npx node --expose-gc bench/chat.bench.ts
 */
import { burst, conversations, startChatLoadServer } from './chat-workload.ts';
import { collectGarbage, hasGc, median } from './util.ts';

const mb = (bytes: number): string => `${Math.round(bytes / 2 ** 20)} MB`;

const burstServer = await startChatLoadServer({ latencyMs: 250, limits: { maxConcurrentRuns: 64 } });
const server = await startChatLoadServer({ latencyMs: 50, limits: { maxConcurrentRuns: 64 } });
try {
  const outcomes = await burst(burstServer.url, 1000);
  const ok = outcomes.filter((o) => o.status === 200);
  const busy = outcomes.filter((o) => o.status === 503);
  const other = outcomes.length - ok.length - busy.length;
  const slowest = Math.max(...outcomes.map((o) => o.ms));
  collectGarbage();
  const before = process.memoryUsage().rss;
  const heapBefore = process.memoryUsage().heapUsed;
  const started = performance.now();
  const { rssSamples, refused } = await conversations(server.url, 5000, 64);
  const wallMs = performance.now() - started;
  collectGarbage();
  const after = process.memoryUsage().rss;
  const heapAfter = process.memoryUsage().heapUsed;
  console.log(
    [
      '',
      '## Chat handler (loopback, maxConcurrentRuns 64; simulated model 250 ms in the burst, 50 ms after)',
      '',
      '| Measure | Value |',
      '| ------- | ----- |',
      `| 1,000 concurrent requests | ${ok.length} × 200, ${busy.length} × 503 + Retry-After, ${other} other |`,
      `| slowest answer of the burst | ${Math.round(slowest)} ms (median 200: ${Math.round(median(ok.map((o) => o.ms)))} ms) |`,
      `| 5,000 conversations, 64 at a time | ${Math.round(wallMs)} ms, ${refused} × 503 retried |`,
      `| RSS before / after${hasGc() ? ' (after GC)' : ''} | ${mb(before)} / ${mb(after)} (per 1,000: ${rssSamples.map(mb).join(', ')}) |`,
      `| JS heap before / after${hasGc() ? ' (after GC)' : ''} | ${mb(heapBefore)} / ${mb(heapAfter)} |`,
      '',
    ].join('\n'),
  );
} finally {
  await Promise.all([burstServer.close(), server.close()]);
}
