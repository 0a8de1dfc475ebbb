import { describe, expect, it } from 'vitest';
import { WindowLimiter } from './rate-limit.ts';

describe('WindowLimiter', () => {
  it('allows `limit` requests per key per window, then refuses until the window ends', () => {
    const l = new WindowLimiter(3, 60_000);
    const t = 1_000_000;
    expect([1, 2, 3, 4].map(() => l.take('a', t))).toEqual([true, true, true, false]);
    expect(l.take('b', t + 1)).toBe(true);
    expect(l.take('a', t + 59_999)).toBe(false);
    expect(l.take('a', t + 60_000)).toBe(true);
  });
});
