/** Patch worker (see prefetch.ts): builds requested batches and transfers their buffers. */
import { parentPort, workerData } from 'node:worker_threads';
import { type BatchSpec, batchTransferList, EpochOrder, makeBatch } from './batches.ts';
import { type CaseEntry, CaseStore } from './store.ts';
import { loadPlanner } from './synthesis-planner.ts';

const { entries, spec } = workerData as { entries: CaseEntry[]; spec: BatchSpec };
const store = new CaseStore(entries);
const order = new EpochOrder(store, spec.seed);
const planner = spec.synthesis === 'none' ? null : await loadPlanner();

parentPort?.on('message', ({ step }: { step: number }) => {
  try {
    const batch = makeBatch(store, order, spec, step, planner);
    parentPort?.postMessage({ step, batch }, batchTransferList(batch));
  } catch (e) {
    parentPort?.postMessage({ step, error: (e as Error).message });
  }
});
