/**
 * Full-resolution CTs for the streaming tests and the edge bench, made on the fly: 512 x 512 x N
 * int16 in LPS orientation, each slice taken from a real CT (the TotalSegmentator example, 3 mm) by
 * nearest-neighbour sampling, its slices repeated back and forth along z to any length; the
 * generated phantom stands in when the real sample is absent. The NIfTI bytes are produced slice by
 * slice as the consumer pulls them, so a 1000-slice CT (500 MB) never exists in memory.
 */
import { readFileSync } from 'node:fs';
import { applyAffine, invertAffine } from '../../shared/geometry/affine.ts';
import { generatePhantom } from '../../shared/phantom/phantom.ts';
import { readNifti } from '../../shared/volume/nifti.ts';
import { niftiSliceStream } from '../../shared/volume/nifti-write-stream.ts';
import type { Affine, Dims3, Volume } from '../../shared/volume/volume.ts';
import { TOTALSEG_CT } from '../shared-data.ts';

export interface FullResCt {
  dims: Dims3;
  affine: Affine;
  /** Raw .nii bytes, produced on demand. */
  stream(): ReadableStream<Uint8Array>;
  /** The whole volume in memory (only for the sizes a reference run can hold). */
  volume(): Volume<Int16Array>;
  source: 'totalseg' | 'phantom';
}

let sourceCache: Volume | null = null;
function source(): { vol: Volume; kind: 'totalseg' | 'phantom' } {
  if (!sourceCache) {
    sourceCache = TOTALSEG_CT
      ? readNifti(readFileSync(TOTALSEG_CT))
      : generatePhantom({ seed: 7, spacing: 3, size: [122, 101, 112], noiseHU: 10 }).ct;
  }
  return { vol: sourceCache, kind: TOTALSEG_CT ? 'totalseg' : 'phantom' };
}

/** A 512 x 512 x `slices` CT at 0.75 mm in plane and `sliceMm` between slices. */
export function fullResCt(slices: number, sliceMm: number, inPlane = 512): FullResCt {
  const { vol: src, kind } = source();
  const pixel = 0.75;
  const dims: Dims3 = [inPlane, inPlane, slices];
  // LPS storage (as DICOM converters write): i towards L, j towards P, k towards S.
  const srcCentre = applyAffine(
    src.affine,
    src.dims.map((d) => (d - 1) / 2),
  );
  const affine = Float64Array.of(
    -pixel,
    0,
    0,
    srcCentre[0] + (pixel * (inPlane - 1)) / 2,
    0,
    -pixel,
    0,
    srcCentre[1] + (pixel * (inPlane - 1)) / 2,
    0,
    0,
    sliceMm,
    srcCentre[2] - (sliceMm * (slices - 1)) / 2,
    0,
    0,
    0,
    1,
  );
  const toSrc = invertAffine(src.affine);
  const [sx, sy, sz] = src.dims;
  // In-plane nearest source offsets (x, y only depend on i, j for this axis-aligned pair).
  const plane = new Int32Array(inPlane * inPlane);
  for (let j = 0; j < inPlane; j++) {
    for (let i = 0; i < inPlane; i++) {
      const w = applyAffine(affine, [i, j, 0]);
      const p = applyAffine(toSrc, w);
      const x = Math.round(p[0]);
      const y = Math.round(p[1]);
      plane[i + inPlane * j] = x < 0 || y < 0 || x >= sx || y >= sy ? -1 : x + sx * y;
    }
  }
  const srcSlice = (k: number) => {
    // Source slice at this z, reflected back and forth past the source's ends.
    const z = applyAffine(toSrc, applyAffine(affine, [0, 0, k]))[2];
    const period = 2 * sz;
    let zi = Math.round(z) % period;
    if (zi < 0) zi += period;
    return zi < sz ? zi : period - 1 - zi;
  };
  const slice = (k: number, out: Int16Array) => {
    const base = srcSlice(k) * sx * sy;
    for (let v = 0; v < plane.length; v++) {
      const o = plane[v];
      out[v] = o < 0 ? -1024 : Math.max(-1024, Math.min(3071, src.data[base + o]));
    }
  };
  return {
    dims,
    affine,
    source: kind,
    stream() {
      let k = 0;
      const out = new Int16Array(inPlane * inPlane);
      const iter: Iterator<Int16Array> = {
        next() {
          if (k >= slices) return { done: true, value: undefined };
          slice(k++, out);
          return { done: false, value: out };
        },
      };
      return niftiSliceStream(dims, affine, 'int16', iter, { chunkBytes: 4 << 20 });
    },
    volume() {
      const data = new Int16Array(inPlane * inPlane * slices);
      for (let k = 0; k < slices; k++)
        slice(k, data.subarray(k * inPlane * inPlane, (k + 1) * inPlane * inPlane));
      return { dims, data, affine: Float64Array.from(affine), datatype: 'int16' };
    },
  };
}

/**
 * A label on the same grid as `ct`: organ (1) in a 45 mm ball and a synthetic tumor (2) in a
 * `radiusMm` ball inside it, centred `offsetMm` from the volume centre; produced slice by slice.
 */
export function ballLabel(ct: FullResCt, radiusMm = 15, offsetMm: [number, number, number] = [40, 20, 0]) {
  const [nx, ny, nz] = ct.dims;
  const a = ct.affine;
  const centre = applyAffine(a, [(nx - 1) / 2, (ny - 1) / 2, (nz - 1) / 2]).map((c, i) => c + offsetMm[i]);
  return {
    stream(): ReadableStream<Uint8Array> {
      let k = 0;
      const out = new Uint8Array(nx * ny);
      const iter: Iterator<Uint8Array> = {
        next() {
          if (k >= nz) return { done: true, value: undefined };
          out.fill(0);
          const dz = applyAffine(a, [0, 0, k])[2] - centre[2];
          if (Math.abs(dz) < 45) {
            for (let j = 0; j < ny; j++) {
              for (let i = 0; i < nx; i++) {
                const dx = a[0] * i + a[3] - centre[0];
                const dy = a[5] * j + a[7] - centre[1];
                const r = Math.hypot(dx, dy, dz);
                if (r < radiusMm) out[i + nx * j] = 2;
                else if (r < 45) out[i + nx * j] = 1;
              }
            }
          }
          k++;
          return { done: false, value: out };
        },
      };
      return niftiSliceStream(ct.dims, ct.affine, 'uint8', iter, { chunkBytes: 4 << 20 });
    },
  };
}

/** A multipart/form-data body whose file parts stream (label first, as the client sends it). */
export function multipartBody(parts: Array<[string, ReadableStream<Uint8Array> | string]>): {
  body: ReadableStream<Uint8Array>;
  contentType: string;
} {
  const boundary = `ft-bench-${Math.random().toString(36).slice(2)}`;
  const enc = new TextEncoder();
  let index = 0;
  let current: ReadableStreamDefaultReader<Uint8Array> | null = null;
  const body = new ReadableStream<Uint8Array>({
    async pull(c) {
      if (current) {
        const { done, value } = await current.read();
        if (!done) {
          c.enqueue(value);
          return;
        }
        current = null;
        c.enqueue(enc.encode('\r\n'));
        return;
      }
      if (index >= parts.length) {
        c.enqueue(enc.encode(`--${boundary}--\r\n`));
        c.close();
        return;
      }
      const [name, value] = parts[index++];
      if (typeof value === 'string') {
        c.enqueue(
          enc.encode(`--${boundary}\r\ncontent-disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`),
        );
        return;
      }
      c.enqueue(
        enc.encode(
          `--${boundary}\r\ncontent-disposition: form-data; name="${name}"; filename="${name}.nii"\r\ncontent-type: application/octet-stream\r\n\r\n`,
        ),
      );
      current = value.getReader();
    },
  });
  return { body, contentType: `multipart/form-data; boundary=${boundary}` };
}
