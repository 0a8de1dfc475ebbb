/**
 * One heavy request at a time per isolate. ORT's wasm runs on one thread, so running requests side by
 * side gains no throughput; it only multiplies the volumes, probability maps and outputs held at
 * once inside the 128 MB isolate. Waiting requests hold only their (bounded) bodies, and the queue
 * itself is bounded: past it the Worker answers 503 instead of piling up memory.
 */
import { ApiError } from './middleware/errors.ts';

export class Gate {
  private readonly maxWaiting: number;
  private tail: Promise<void> = Promise.resolve();
  private waiting = 0;

  constructor(maxWaiting: number) {
    this.maxWaiting = maxWaiting;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.waiting >= this.maxWaiting) {
      throw new ApiError(503, 'busy', 'too many requests in progress in this instance; retry shortly', {
        'retry-after': '5',
      });
    }
    this.waiting++;
    const previous = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((r) => {
      release = r;
    });
    try {
      await previous;
      this.waiting--;
      return await fn();
    } finally {
      release();
    }
  }

  get queued(): number {
    return this.waiting;
  }
}

/** The isolate's gate for inference and synthesis. */
export const heavyWork = new Gate(16);
