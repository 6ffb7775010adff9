// A producer that dies between adding a run's job and writing the run's record leaves a job behind. Once a
// worker has finished that job, a second producer submitting the same runId must get its result from the job
// itself: the job's completion event may already be behind the second producer's event stream.
import { Queue } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { jobIdOf } from '../../src/distributed/job.ts';
import { DistributedPerform } from '../../src/distributed/perform.ts';
import { startWorker } from '../../src/distributed/worker.ts';
import { spam } from '../cli/fixtures/eval-chain.ts';
import { skipRedis, startRedisServer } from '../support/redis-server.ts';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(skipRedis)('a job left by a producer that died before recording its run', () => {
  it('is found by the next submit of its runId, which settles with its result', async () => {
    const redis = await startRedisServer();
    const chains = { spam };
    const worker = await startWorker({ connection: redis.url, queue: 'orphans', chains, concurrency: 1 });
    const queue = new Queue('orphans', { connection: { host: '127.0.0.1', port: redis.port } });
    const producer = new DistributedPerform({ connection: redis.url, queue: 'orphans', chains });
    try {
      const runId = 'orphan-1';
      // What the dead producer did: the job added, no run record written.
      await queue.add(
        'spam',
        { chain: 'spam', hash: spam.hash, input: { text: 'hello' }, runId },
        { jobId: jobIdOf(runId), attempts: 1 },
      );
      for (let i = 0; i < 100 && (await queue.getJobState(jobIdOf(runId))) !== 'completed'; i++)
        await sleep(50);
      expect(await queue.getJobState(jobIdOf(runId))).toBe('completed');
      // Another run first, as a resumed evaluation hands other units: the event stream moves past the orphan.
      await (await producer.submit('spam', { text: 'other' }, { runId: 'other-1' })).result();
      const run = await producer.submit('spam', { text: 'hello' }, { runId });
      const outcome = await Promise.race([
        run.result().then((result) => result.outputs),
        sleep(5000).then(() => 'still waiting after 5 s'),
      ]);
      expect(outcome).toEqual({ classify: { label: expect.any(String) as string } });
      expect(run.existing).toBe(true);
      expect(worker.completed).toBe(2);
    } finally {
      await producer.close();
      await worker.close();
      await queue.close();
      await redis.close();
    }
  }, 30_000);
});
