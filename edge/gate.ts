/**
 * One heavy request at a time per isolate. ORT's wasm runs on one thread, so running requests side by
 * side gains no throughput; it only multiplies the bands, slices and outputs held at once inside the
 * 128 MB isolate. The request holding the gate is the only one reading its body (bodies stream
 * through the work), so the gate is also the bound on uploads in flight: a waiting request has
 * read nothing. The queue is bounded in length and in waiting time (503 with Retry-After past
 * either), and a waiting request whose client disconnects leaves the queue.
 */
import { StreamAbortedError } from '../shared/volume/nifti-slices.ts';
import { ApiError } from './middleware/errors.ts';

export interface AcquireOptions {
  /** Longest wait for the gate (ms). */
  maxWaitMs?: number;
  /** The client's disconnect. */
  signal?: AbortSignal;
  /** Requests that may wait (default: the gate's own bound). */
  maxQueued?: number;
}

/** Releases a held gate; calling it again does nothing. */
export type Release = () => void;

export class Gate {
  private readonly maxWaiting: number;
  private busy = false;
  private readonly queue: Array<{ grant: () => void }> = [];

  constructor(maxWaiting: number) {
    this.maxWaiting = maxWaiting;
  }

  /** Waits for the gate; the caller must call the returned release (once the response is done). */
  acquire(options: AcquireOptions = {}): Promise<Release> {
    if (options.signal?.aborted) return Promise.reject(new StreamAbortedError());
    if (!this.busy) {
      this.busy = true;
      return Promise.resolve(this.releaser());
    }
    const limit = options.maxQueued ?? this.maxWaiting;
    if (this.queue.length >= limit) {
      return Promise.reject(
        new ApiError(
          503,
          'busy',
          `too many requests queued in this instance (limit ${limit}); retry shortly`,
          {
            'retry-after': '5',
          },
        ),
      );
    }
    return new Promise<Release>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const leave = () => {
        const i = this.queue.indexOf(entry);
        if (i >= 0) this.queue.splice(i, 1);
        if (timer !== undefined) clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        leave();
        reject(new StreamAbortedError('the client disconnected while queued'));
      };
      const entry = {
        grant: () => {
          leave();
          resolve(this.releaser());
        },
      };
      this.queue.push(entry);
      if (options.maxWaitMs !== undefined) {
        const ms = options.maxWaitMs;
        timer = setTimeout(() => {
          leave();
          reject(
            new ApiError(503, 'busy', `waited ${ms} ms in the queue (the queue wait limit); retry later`, {
              'retry-after': String(Math.max(1, Math.ceil(ms / 1000))),
            }),
          );
        }, ms);
      }
      options.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private releaser(): Release {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.queue.shift();
      if (next) next.grant();
      else this.busy = false;
    };
  }

  /** Runs `fn` holding the gate (released when it settles). */
  async run<T>(fn: () => Promise<T>, options: AcquireOptions = {}): Promise<T> {
    const release = await this.acquire(options);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  get queued(): number {
    return this.queue.length;
  }

  get held(): boolean {
    return this.busy;
  }
}

/** The isolate's gate for inference and synthesis. */
export const heavyWork = new Gate(8);
