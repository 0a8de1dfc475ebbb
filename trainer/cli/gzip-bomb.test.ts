/**
 * A 256 MiB gzip bomb (255 KB on disk) must not inflate: readNifti (the path `synthesize` and
 * `segment` read NIfTI through) checks the header before inflating past it, and stops at the data
 * the header announced. The CLI runs as its own
 * process and reports its peak RSS on exit.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeNifti } from '../../shared/volume/nifti.ts';
import { makeVolume } from '../../shared/volume/volume.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'bin/freetumor.js');
const REPORT_RSS = `data:text/javascript,process.on('exit',()=>process.stderr.write('maxrss_kb='+process.resourceUsage().maxRSS+'\\n'))`;
const work = mkdtempSync(join(tmpdir(), 'freetumor-bomb-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A NIfTI header (valid, or with its magic broken) followed by 256 MiB of zeros, gzip-compressed. */
async function bomb(path: string, validHeader: boolean): Promise<number> {
  const head = writeNifti(
    makeVolume(
      [2, 2, 2],
      new Int16Array(8),
      Float64Array.of(1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1),
      'int16',
    ),
    {
      gzip: false,
    },
  ).subarray(0, 352);
  if (!validHeader) head[344] = 0x78; // "x+1": not a NIfTI magic
  const zeros = new Uint8Array(1 << 20);
  let sent = 0;
  const source = new ReadableStream<Uint8Array>({
    pull(c) {
      if (sent === 0) c.enqueue(head.slice());
      if (sent >= 256) c.close();
      else c.enqueue(zeros);
      sent++;
    },
  });
  const gz = new Uint8Array(
    await new Response(
      source.pipeThrough(
        new CompressionStream('gzip') as unknown as ReadableWritablePair<Uint8Array, Uint8Array>,
      ),
    ).arrayBuffer(),
  );
  writeFileSync(path, gz);
  return gz.byteLength;
}

function freetumor(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', REPORT_RSS, BIN, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  const rss = Number(/maxrss_kb=(\d+)/.exec(r.stderr)?.[1] ?? Number.NaN) * 1024;
  return { code: r.status, stderr: r.stderr, rssMiB: rss / 2 ** 20 };
}

describe('gzip bomb (256 MiB of zeros behind a NIfTI header)', () => {
  const bad = join(work, 'bad-header.nii.gz');
  const tiny = join(work, 'tiny-header.nii.gz');
  beforeAll(async () => {
    expect(await bomb(bad, false)).toBeLessThan(300_000);
    await bomb(tiny, true);
  });

  it('synthesize refuses the header, or reads only the voxels the header announces, without inflating the bomb', () => {
    for (const image of [bad, tiny]) {
      const r = freetumor(
        'synthesize',
        '--image',
        image,
        '--label',
        image,
        '--organ',
        'liver',
        '--out',
        join(work, 's'),
      );
      expect(r.code).toBe(2);
      expect(r.rssMiB).toBeLessThan(256);
    }
  });
});
