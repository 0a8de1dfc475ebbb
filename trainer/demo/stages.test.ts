import { describe, expect, it } from 'vitest';
import { DemoInterrupted, StageLog, StageSkip } from './stages.ts';

function logOf() {
  const lines: string[] = [];
  return { lines, log: new StageLog((l) => lines.push(l)) };
}

describe('StageLog', () => {
  it('records a done stage with its note and time', async () => {
    const { lines, log } = logOf();
    const v = await log.run('data', async () => ({ value: 42, note: '3 cases' }));
    expect(v).toBe(42);
    expect(log.records).toEqual([
      { name: 'data', status: 'done', seconds: expect.any(Number), note: '3 cases' },
    ]);
    expect(lines.at(-1)).toMatch(/data: done 3 cases \(\d+\.\d s\)/);
  });

  it('ends a stage as skipped on StageSkip; a broken import fails the stage', async () => {
    const { log } = logOf();
    expect(
      await log.run('edge', async () => Promise.reject(new StageSkip('no segmentor was published'))),
    ).toBeNull();
    const missing = Object.assign(new Error("Cannot find module 'trainer/export/from-run.ts'"), {
      code: 'ERR_MODULE_NOT_FOUND',
    });
    expect(await log.run('export', async () => Promise.reject(missing))).toBeNull();
    expect(log.records.map((r) => r.status)).toEqual(['skipped', 'failed']);
    expect(log.records[1].note).toContain('Cannot find module');
  });

  it('keeps going after an optional stage fails, rethrows a required one', async () => {
    const { log } = logOf();
    expect(await log.run('compare', async () => Promise.reject(new Error('boom\nstack')))).toBeNull();
    expect(log.records[0]).toMatchObject({ status: 'failed', note: 'boom' });
    await expect(
      log.run('data', async () => Promise.reject(new Error('disk full')), { required: true }),
    ).rejects.toThrow('disk full');
  });

  it('starts no stage after an interrupt', async () => {
    let stop = false;
    const log = new StageLog(
      () => {},
      () => stop,
    );
    stop = true;
    await expect(log.run('train', async () => ({ value: 1, note: '' }))).rejects.toBeInstanceOf(
      DemoInterrupted,
    );
  });
});
