import { describe, expect, it } from 'vitest';
import { Gate } from './gate.ts';

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('Gate', () => {
  it('runs one job at a time, in arrival order, and survives a failing job', async () => {
    const gate = new Gate(10);
    let running = 0;
    let peak = 0;
    const order: number[] = [];
    const job = (i: number, fail = false) =>
      gate.run(async () => {
        running++;
        peak = Math.max(peak, running);
        await tick();
        order.push(i);
        running--;
        if (fail) throw new Error('boom');
        return i;
      });
    const results = await Promise.allSettled([job(0), job(1, true), job(2), job(3)]);
    expect(peak).toBe(1);
    expect(order).toEqual([0, 1, 2, 3]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
  });

  it('refuses with 503 once the queue is full (one running, maxWaiting queued)', async () => {
    const gate = new Gate(2);
    const slow = () => gate.run(() => tick());
    const running = [slow(), slow(), slow()];
    const d = await slow().catch((e) => e);
    expect(d).toMatchObject({ status: 503, code: 'busy', headers: { 'retry-after': '5' } });
    await Promise.all(running);
    expect(gate.queued).toBe(0);
    await expect(slow()).resolves.toBeUndefined();
  });

  it('gives up a wait longer than the limit (503 with Retry-After) and leaves the queue when the client goes', async () => {
    const gate = new Gate(4);
    const release = await gate.acquire();
    const late = await gate.acquire({ maxWaitMs: 20 }).catch((e) => e);
    expect(late).toMatchObject({ status: 503, code: 'busy', headers: { 'retry-after': '1' } });
    const abort = new AbortController();
    const gone = gate.acquire({ signal: abort.signal }).catch((e) => e);
    expect(gate.queued).toBe(1);
    abort.abort();
    expect((await gone).name).toBe('StreamAbortedError');
    expect(gate.queued).toBe(0);
    release();
    expect(gate.held).toBe(false);
  });
});
