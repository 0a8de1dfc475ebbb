import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createProgress, duration } from './progress.ts';

/** A non-TTY stream that keeps what is written. */
function sink() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  return { stream, lines };
}

describe('createProgress without a terminal', () => {
  it('prints the first step, then one line per interval, and the last step at stop', () => {
    const { stream, lines } = sink();
    let t = 0;
    const p = createProgress(600, 0, 'segmentation', { stream, intervalSeconds: 20, now: () => t });
    for (let step = 1; step <= 100; step++) {
      t = step * 1000; // 1 step/s
      p.update(step, { loss: 1 / step });
    }
    p.stop();
    // Steps 1, 21, 41, 61, 81 (every 20 s), then 100 at stop.
    expect(lines).toHaveLength(6);
    expect(lines[0]).toBe('segmentation: step 1/600 (0%) 1.00 steps/s ETA 9m 59s loss 1.0000');
    expect(lines[1]).toMatch(/^segmentation: step 21\/600 \(3%\) 1\.00 steps\/s ETA 9m 39s loss 0\.0476$/);
    expect(lines[5]).toMatch(/^segmentation: step 100\/600 \(16%\)/);
  });

  it('says the total time when done, counts other units, and stays silent without steps', () => {
    const { stream, lines } = sink();
    let t = 0;
    const p = createProgress(2, 0, 'segment', { stream, unit: 'cases', intervalSeconds: 60, now: () => t });
    t = 4000;
    p.update(1, {});
    t = 8000;
    p.update(2, {});
    p.stop();
    expect(lines).toEqual([
      'segment: case 1/2 (50%) 0.250 cases/s ETA 4s',
      'segment: case 2/2 (100%) 0.250 cases/s in 8s',
    ]);
    const quiet = sink();
    createProgress(5, 5, 'x', { stream: quiet.stream }).stop();
    expect(quiet.lines).toEqual([]);
  });
});

describe('duration', () => {
  it('reads like a person would write it', () => {
    expect([42, 356, 7322].map(duration)).toEqual(['42s', '5m 56s', '2h 2m']);
  });
});
