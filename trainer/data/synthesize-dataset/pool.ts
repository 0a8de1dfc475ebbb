/**
 * A fixed pool of worker threads fed from one queue. Results are handed to `done` one at a time
 * (in completion order), so the caller's writes for one variant never interleave with another's.
 */
import { Worker } from 'node:worker_threads';
import type { WorkerReply, WorkerRequest, WorkerSetup } from './worker.ts';

export async function runPool<T>(
  items: readonly T[],
  workers: number,
  setup: WorkerSetup,
  request: (item: T) => Promise<WorkerRequest>,
  done: (item: T, reply: WorkerReply) => Promise<void>,
): Promise<void> {
  if (items.length === 0) return;
  const queue = [...items];
  let writes = Promise.resolve();
  const k = Math.max(1, Math.min(workers, items.length));
  const url = new URL('./worker.ts', import.meta.url);
  await Promise.all(
    Array.from({ length: k }, async () => {
      const worker = new Worker(url, { workerData: setup });
      try {
        for (let item = queue.shift(); item !== undefined; item = queue.shift()) {
          const current = item;
          const message = await request(current);
          const reply = await new Promise<WorkerReply>((resolve, reject) => {
            const onError = (e: Error) => reject(e);
            const onExit = (code: number) => reject(new Error(`synthesis worker exited (${code})`));
            worker.once('error', onError);
            worker.once('exit', onExit);
            worker.once('message', (m: WorkerReply) => {
              worker.off('error', onError);
              worker.off('exit', onExit);
              resolve(m);
            });
            worker.postMessage(message, [
              message.image.buffer as ArrayBuffer,
              message.label.buffer as ArrayBuffer,
            ]);
          });
          writes = writes.then(() => done(current, reply));
          await writes;
        }
      } finally {
        await worker.terminate();
      }
    }),
  );
}
