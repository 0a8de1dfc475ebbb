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

  it('refuses with 503 once the queue is full', async () => {
    const gate = new Gate(2);
    const slow = () => gate.run(() => tick());
    const a = slow();
    const b = slow();
    const c = await slow().catch((e) => e);
    expect(c).toMatchObject({ status: 503, code: 'busy' });
    await Promise.all([a, b]);
    expect(gate.queued).toBe(0);
    await expect(slow()).resolves.toBeUndefined();
  });
});
