/**
 * Batch prefetching off the training thread: `workers` worker_threads build the batches of the
 * next steps (crops, augmentation, synthesis plans) and transfer their buffers back, while the
 * training thread runs tfjs. Batches are a pure function of (seed, step), so the result is the
 * same with 0, 1 or many workers, and after a resume.
 */
import { Worker } from 'node:worker_threads';
import { type Batch, type BatchSpec, EpochOrder, makeBatch } from './batches.ts';
import { type CaseEntry, CaseStore } from './store.ts';
import { loadPlanner, type Planner } from './synthesis-planner.ts';

export interface BatchSource {
  /** The batch of `step`; steps must be requested in increasing order. */
  next(step: number): Promise<Batch>;
  close(): Promise<void>;
}

export interface SourceOptions {
  entries: readonly CaseEntry[];
  spec: BatchSpec;
  workers: number;
  prefetch: number;
  /** Last step the run will request (no work is scheduled past it). */
  lastStep: number;
}

export async function createBatchSource(o: SourceOptions): Promise<BatchSource> {
  if (o.workers <= 0) return new InlineSource(o, o.spec.synthesis === 'none' ? null : await loadPlanner());
  return new WorkerSource(o);
}

class InlineSource implements BatchSource {
  private readonly store: CaseStore;
  private readonly order: EpochOrder;
  private readonly spec: BatchSpec;
  private readonly planner: Planner | null;

  constructor(o: SourceOptions, planner: Planner | null) {
    this.store = new CaseStore(o.entries);
    this.order = new EpochOrder(this.store, o.spec.seed);
    this.spec = o.spec;
    this.planner = planner;
  }

  async next(step: number): Promise<Batch> {
    return makeBatch(this.store, this.order, this.spec, step, this.planner);
  }

  async close(): Promise<void> {}
}

interface WorkerReply {
  step: number;
  batch?: Batch;
  error?: string;
}

class WorkerSource implements BatchSource {
  private readonly workers: Worker[];
  private readonly pending = new Map<
    number,
    { promise: Promise<Batch>; resolve: (b: Batch) => void; reject: (e: Error) => void }
  >();
  private readonly o: SourceOptions;
  private scheduledUpTo = -1;
  private failure: Error | null = null;

  constructor(o: SourceOptions) {
    this.o = o;
    this.workers = Array.from({ length: o.workers }, () => {
      const w = new Worker(new URL('./worker.ts', import.meta.url), {
        workerData: { entries: o.entries, spec: o.spec },
      });
      w.on('message', (m: WorkerReply) => this.onReply(m));
      w.on('error', (e: Error) => this.fail(e));
      return w;
    });
  }

  private fail(e: Error): void {
    this.failure = e;
    for (const p of this.pending.values()) p.reject(e);
  }

  private onReply(m: WorkerReply): void {
    const p = this.pending.get(m.step);
    if (!p) return;
    if (m.error) p.reject(new Error(`patch worker failed at step ${m.step}: ${m.error}`));
    else p.resolve(m.batch as Batch);
  }

  private schedule(step: number): void {
    if (this.pending.has(step) || step > this.o.lastStep) return;
    let resolve!: (b: Batch) => void;
    let reject!: (e: Error) => void;
    const promise = new Promise<Batch>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    promise.catch(() => {});
    this.pending.set(step, { promise, resolve, reject });
    this.workers[step % this.workers.length].postMessage({ step });
    this.scheduledUpTo = Math.max(this.scheduledUpTo, step);
  }

  async next(step: number): Promise<Batch> {
    if (this.failure) throw this.failure;
    for (const s of this.pending.keys()) if (s < step) this.pending.delete(s);
    for (let s = step; s <= step + this.o.prefetch; s++) this.schedule(s);
    const p = this.pending.get(step);
    if (!p) throw new Error(`step ${step} is past the last step ${this.o.lastStep}`);
    try {
      return await p.promise;
    } finally {
      this.pending.delete(step);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
