import { availableParallelism } from 'node:os';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { Rng } from '../../shared/random.ts';
import { readNifti, readNiftiHeader, writeNifti } from '../../shared/volume/nifti.ts';
import { makeVolume } from '../../shared/volume/volume.ts';
import { niftiGzAsync, readNiftiHeaderNode, readNiftiNodeAsync } from './nifti-node.ts';

/** An int16 CT-like volume of ~3.5 MB: large enough to be deflated in pieces on two cores. */
function ct() {
  const dims: [number, number, number] = [128, 120, 112];
  const data = new Int16Array(dims[0] * dims[1] * dims[2]);
  const rng = new Rng(5);
  for (let v = 0; v < data.length; v++)
    data[v] = Math.round(-1000 + 1400 * rng.random()) * (v % 7 === 0 ? 1 : 0);
  const affine = Float64Array.of(-1.5, 0, 0, 90, 0, 1.5, 0, -80, 0, 0, 2, 10, 0, 0, 0, 1);
  return makeVolume(dims, data, affine, 'int16');
}

function errorOf(f: () => unknown): string | null {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  return null;
}

describe('CLI NIfTI through native zlib', () => {
  it('niftiGzAsync writes one gzip member with writeNifti bytes, read back by every reader', async () => {
    const vol = ct();
    const gz = await niftiGzAsync(vol, { description: 'test' });
    const raw = writeNifti(vol, { gzip: false, description: 'test' });
    expect(raw.length).toBeGreaterThan(2 << 20);
    if (availableParallelism() > 1) {
      // Pieces end on a sync flush: an empty stored block (00 00 ff ff) inside the stream.
      expect(Buffer.from(gz).indexOf(Buffer.from([0, 0, 0xff, 0xff]), 10)).toBeLessThan(gz.length - 8);
    }
    expect(Buffer.from(gunzipSync(gz)).equals(Buffer.from(raw))).toBe(true);
    // The shared (fflate) reader, and the native one.
    expect(readNifti(gz).data).toEqual(vol.data);
    const back = await readNiftiNodeAsync(gz);
    expect(back.data).toEqual(vol.data);
    expect(back.affine).toEqual(readNifti(gz).affine);
  });

  it('readNiftiHeaderNode gives the shared reader header, and its errors', async () => {
    const gz = await niftiGzAsync(ct());
    expect(readNiftiHeaderNode(gz)).toEqual(readNiftiHeader(gz));
    const plain = writeNifti(ct(), { gzip: false });
    expect(readNiftiHeaderNode(plain)).toEqual(readNiftiHeader(plain));
    // A corrupt stream and one cut inside the header: the shared reader's errors, word for word.
    const corrupt = new Uint8Array(gz);
    corrupt.set([0xff, 0xff, 0xff], 12);
    const cut = gz.subarray(0, 12);
    for (const bad of [corrupt, cut]) {
      const shared = errorOf(() => readNiftiHeader(bad));
      expect(shared).toBeTruthy();
      expect(errorOf(() => readNiftiHeaderNode(bad))).toBe(shared);
    }
  });

  it('a header announcing more voxels than the stream holds is refused, not over-allocated', async () => {
    const vol = ct();
    const gz = await niftiGzAsync(vol);
    const cut = gz.subarray(0, Math.floor(gz.length / 2));
    await expect(readNiftiNodeAsync(cut)).rejects.toThrow(/truncated/);
  });
});
