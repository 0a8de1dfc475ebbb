import { gzipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { NiftiError } from '../errors.ts';
import { Rng } from '../random.ts';
import { readNifti } from './nifti.ts';
import { buildNifti } from './nifti-fixtures.ts';
import { NiftiSliceReader, readSliceVolume, streamOfBytes } from './nifti-slices.ts';

/**
 * A byte stream (type 'bytes', as workerd's request bodies are), so the reader takes its BYOB path
 * and fills one reused buffer; chunks are enqueued at the given (odd) size.
 */
function byteStream(bytes: Uint8Array, chunk: number): ReadableStream<Uint8Array> {
  let pos = 0;
  return new ReadableStream({
    type: 'bytes',
    pull(controller) {
      if (pos >= bytes.length) {
        controller.close();
        controller.byobRequest?.respond(0);
        return;
      }
      const end = Math.min(bytes.length, pos + chunk);
      controller.enqueue(bytes.slice(pos, end));
      pos = end;
    },
  });
}

/** A 37 x 29 x 23 int16 volume of seeded noise, big-endian, with scaling and an extension gap. */
function noisyNifti(): Uint8Array {
  const rng = new Rng(11);
  const dim = [3, 37, 29, 23, 1, 1, 1, 1];
  const values = Array.from({ length: 37 * 29 * 23 }, () => Math.round(rng.uniform(-1024, 2000)));
  return buildNifti({
    dim,
    datatype: 'int16',
    values,
    littleEndian: false,
    pixdim: [1, 0.8, 0.8, 2.5, 0, 0, 0, 0],
    sclSlope: 1,
    sclInter: -3,
    voxOffset: 352 + 48,
  });
}

describe('NiftiSliceReader over byte streams (BYOB, one reused buffer)', () => {
  const file = noisyNifti();
  const expected = readNifti(file);
  const cases: Array<[string, () => ReadableStream<Uint8Array>]> = [
    ['byte stream, .nii, 1 KiB chunks', () => byteStream(file, 1021)],
    ['byte stream, .nii, chunks larger than a read', () => byteStream(file, 300_007)],
    ['byte stream, .nii, 1-byte chunks at the start', () => byteStream(file, 1)],
    ['byte stream, .nii.gz', () => byteStream(gzipSync(file), 977)],
    ['default stream, .nii', () => streamOfBytes(file, 4099)],
    ['default stream, .nii.gz', () => streamOfBytes(gzipSync(file), 4099)],
  ];
  for (const [name, stream] of cases) {
    it(`${name}: the same volume as readNifti`, async () => {
      const vol = await readSliceVolume(await NiftiSliceReader.open(stream()));
      expect(vol.dims).toEqual(expected.dims);
      expect(vol.datatype).toBe(expected.datatype);
      expect([...vol.affine]).toEqual([...expected.affine]);
      expect(vol.data).toEqual(expected.data);
    });
  }

  it('slices held in the ring stay intact while later chunks refill the reused buffer', async () => {
    const reader = await NiftiSliceReader.open(byteStream(file, 513), {}, 3);
    const n = reader.sliceVoxels;
    const held: Array<{ k: number; data: ArrayLike<number> }> = [];
    for (let k = 0; ; k++) {
      const slice = await reader.next();
      if (!slice) break;
      held.push({ k, data: slice });
      // The two slices before this one must still read as they did (ring of 3).
      for (const h of held.slice(-3)) {
        const want = expected.data.subarray(h.k * n, (h.k + 1) * n);
        expect(Array.from(h.data)).toEqual(Array.from(want));
      }
    }
    expect(held.length).toBe(expected.dims[2]);
  });

  it('a truncated byte stream is a typed error naming the bytes present', async () => {
    const cut = file.subarray(0, file.length - 1000);
    const reader = await NiftiSliceReader.open(byteStream(cut, 4096));
    await expect(readSliceVolume(reader)).rejects.toThrow(NiftiError);
    await expect(readSliceVolume(await NiftiSliceReader.open(byteStream(cut, 4096)))).rejects.toThrow(
      /voxel data are truncated/,
    );
  });
});
