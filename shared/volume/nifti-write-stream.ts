/**
 * A NIfTI-1 file produced slice by slice: the same header as `writeNifti`, then each storage slice
 * as it is made, so a 512 x 512 x 1000 mask never exists whole. The stream is pull-driven (the
 * consumer's pace, e.g. the HTTP client's) and holds one batch of slices. gzip it with the
 * platform's CompressionStream (`gzipStream`).
 */
import { castTo, datatypeInfo, datatypeOfArray, hostToLittleEndian } from './datatype.ts';
import { niftiHeaderBytes } from './nifti.ts';
import type { Affine, DataTypeName, Dims3, VoxelArray } from './volume.ts';

export interface SliceStreamWriteOptions {
  /** Called once when the stream ends, fails or is cancelled (release what the slices need). */
  onClose?: (outcome: 'done' | 'cancelled' | 'error') => void;
  /** Bytes per enqueued chunk (slices are batched up to it). Default 1 MiB. */
  chunkBytes?: number;
  description?: string;
}

/** The uncompressed .nii bytes of a volume whose slices come from `slices` (storage order). */
export function niftiSliceStream(
  dims: Dims3,
  affine: Affine,
  datatype: DataTypeName,
  slices: Iterator<VoxelArray> | AsyncIterator<VoxelArray>,
  options: SliceStreamWriteOptions = {},
): ReadableStream<Uint8Array> {
  const bytes = datatypeInfo(datatype).bytes;
  const sliceBytes = dims[0] * dims[1] * bytes;
  const perChunk = Math.max(1, Math.floor((options.chunkBytes ?? 1 << 20) / sliceBytes));
  let headerSent = false;
  let written = 0;
  let closed = false;
  const close = (outcome: 'done' | 'cancelled' | 'error') => {
    if (closed) return;
    closed = true;
    options.onClose?.(outcome);
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        if (!headerSent) {
          headerSent = true;
          controller.enqueue(niftiHeaderBytes(dims, affine, datatype, options.description));
          return;
        }
        const n = Math.min(perChunk, dims[2] - written);
        if (n <= 0) {
          controller.close();
          close('done');
          return;
        }
        const out = new Uint8Array(n * sliceBytes);
        for (let s = 0; s < n; s++) {
          const r = await slices.next();
          if (r.done) throw new Error('internal: the mask ended before its last slice');
          const v = r.value;
          const cast = datatypeOfArray(v) === datatype ? v : castTo(v, datatype);
          out.set(new Uint8Array(cast.buffer, cast.byteOffset, cast.byteLength), s * sliceBytes);
        }
        hostToLittleEndian(out, bytes);
        written += n;
        controller.enqueue(out);
      } catch (e) {
        controller.error(e);
        close('error');
      }
    },
    cancel() {
      close('cancelled');
    },
  });
}

/**
 * The .nii.gz bytes of a volume whose slices come from `slices`, gzip-compressed by the platform's
 * CompressionStream as they are written. Slices are copied into one reused buffer that is written
 * to the compressor and awaited (the compressor has consumed it when the write settles), so the
 * raw voxels make no garbage: only compressed chunks leave. The producer follows the reader's pace
 * and stops when the reader cancels.
 */
export function gzipNiftiSliceStream(
  dims: Dims3,
  affine: Affine,
  datatype: DataTypeName,
  slices: Iterator<VoxelArray> | AsyncIterator<VoxelArray>,
  options: SliceStreamWriteOptions = {},
): ReadableStream<Uint8Array> {
  const cs = new CompressionStream('gzip') as unknown as ReadableWritablePair<Uint8Array, Uint8Array>;
  const writer = cs.writable.getWriter();
  const bytes = datatypeInfo(datatype).bytes;
  const sliceBytes = dims[0] * dims[1] * bytes;
  const perChunk = Math.max(1, Math.floor((options.chunkBytes ?? 1 << 20) / sliceBytes));
  let closed = false;
  const close = (outcome: 'done' | 'cancelled' | 'error') => {
    if (closed) return;
    closed = true;
    options.onClose?.(outcome);
  };
  const produce = async () => {
    try {
      await writer.write(niftiHeaderBytes(dims, affine, datatype, options.description));
      const buf = new Uint8Array(perChunk * sliceBytes);
      for (let written = 0; written < dims[2]; ) {
        const n = Math.min(perChunk, dims[2] - written);
        for (let s = 0; s < n; s++) {
          const r = await slices.next();
          if (r.done) throw new Error('internal: the volume ended before its last slice');
          const v = r.value;
          const cast = datatypeOfArray(v) === datatype ? v : castTo(v, datatype);
          buf.set(new Uint8Array(cast.buffer, cast.byteOffset, cast.byteLength), s * sliceBytes);
        }
        const chunk = buf.subarray(0, n * sliceBytes);
        hostToLittleEndian(chunk, bytes);
        await writer.ready;
        await writer.write(chunk);
        written += n;
      }
      await writer.close();
      close('done');
    } catch (e) {
      // A cancelled reader makes the write fail: that is the end, not an error to report.
      await writer.abort(e).catch(() => undefined);
      close('cancelled');
    }
  };
  void produce();
  const reader = cs.readable.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      } catch (e) {
        controller.error(e);
        close('error');
      }
    },
    async cancel(reason) {
      await reader.cancel(reason).catch(() => undefined);
      close('cancelled');
    },
  });
}

/** `stream` gzip-compressed by the platform (CompressionStream: Node 18+, workerd, browsers). */
export function gzipStream(stream: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  return stream.pipeThrough(
    new CompressionStream('gzip') as unknown as ReadableWritablePair<Uint8Array, Uint8Array>,
  );
}
