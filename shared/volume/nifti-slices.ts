/**
 * A NIfTI byte stream read slice by slice, for volumes that do not fit in memory (a 512 x 512 x 1000
 * CT is 500 MB of int16). The stream (a file, an HTTP body) is gunzipped by the platform's
 * DecompressionStream when it starts with gzip's magic bytes; the header is parsed and validated
 * against the limits before a single voxel is read; then each storage slice (k fixed: nx * ny
 * voxels) is handed out as the same typed values `readNifti` would give for it (host byte order,
 * scl_slope / scl_inter applied as nibabel does).
 *
 * Memory: a few slices. The reader stops pulling once the voxel data the header announced are in,
 * so trailing bytes (or a gzip bomb behind a small header) are never inflated.
 */
import { FreeTumorError, LimitError, NiftiError } from '../errors.ts';
import { toHostOrder, typedArrayOn } from './datatype.ts';
import {
  DEFAULT_NIFTI_LIMITS,
  NIFTI1_HEADER_BYTES,
  NIFTI2_HEADER_BYTES,
  type NiftiHeaderInfo,
  type NiftiLimits,
  parseNiftiHeader,
  sniffHeader,
} from './nifti-header.ts';
import type { Volume, VoxelArray } from './volume.ts';

export interface SliceStreamLimits extends NiftiLimits {
  /** Most storage slices (dim[3]). */
  maxSlices: number;
  /** Most voxels per side in a slice (dim[1], dim[2]). */
  maxInPlane: number;
}

export const DEFAULT_SLICE_LIMITS: SliceStreamLimits = {
  ...DEFAULT_NIFTI_LIMITS,
  maxVoxels: 2 ** 31,
  maxBytes: 2 ** 34,
  maxCompressedBytes: 2 ** 34,
  maxSlices: 4096,
  maxInPlane: 2048,
};

/** Idle time (ms) after which a stalled body is given up; see `readTimeoutMs`. */
export interface SliceStreamOptions {
  limits?: Partial<SliceStreamLimits>;
  /** Fails the read when no bytes arrive for this long (a stalled upload). Default: no timeout. */
  idleTimeoutMs?: number;
  /** Aborts the read (client gone, deadline). */
  signal?: AbortSignal;
}

/** A read that was aborted by the caller's signal (not an input error). */
export class StreamAbortedError extends Error {
  constructor(message = 'the input stream was aborted') {
    super(message);
    this.name = 'StreamAbortedError';
  }
}

/** No bytes for longer than the idle timeout. */
export class StreamTimeoutError extends FreeTumorError {
  readonly timeoutMs: number;
  constructor(timeoutMs: number) {
    super('request_timeout', `the request body stalled: no bytes for ${timeoutMs} ms`);
    this.name = 'StreamTimeoutError';
    this.timeoutMs = timeoutMs;
  }
}

/** Bytes one read asks a byte stream for (BYOB), and the reused buffer's size. */
const READ_BYTES = 256 * 1024;

/**
 * Reads a stream's chunks, with a BYOB reader where the stream is a byte stream (workerd's request
 * bodies and DecompressionStream, Blob streams): then the bytes land in a buffer this reader owns,
 * which `reuse` lets it fill again on the next read instead of allocating one per chunk (a 500 MB
 * body would otherwise leave 500 MB of garbage for the collector, which runs late on buffers). A
 * chunk returned with `reuse` on is valid until the next read.
 */
class ChunkReader {
  private readonly byob: ReadableStreamBYOBReader | null;
  private readonly plain: ReadableStreamDefaultReader<Uint8Array> | null;
  private spare: ArrayBuffer | null = null;
  /** Whether the caller is done with a chunk when it asks for the next one. */
  reuse = false;

  constructor(stream: ReadableStream<Uint8Array>) {
    let byob: ReadableStreamBYOBReader | null = null;
    try {
      byob = (stream as ReadableStream<Uint8Array<ArrayBuffer>>).getReader({ mode: 'byob' });
    } catch {
      byob = null;
    }
    this.byob = byob;
    this.plain = byob ? null : stream.getReader();
  }

  async read(): Promise<ReadableStreamReadResult<Uint8Array>> {
    if (this.plain) return this.plain.read();
    const reader = this.byob as ReadableStreamBYOBReader;
    const buffer = (this.reuse && this.spare) || new ArrayBuffer(READ_BYTES);
    this.spare = null;
    const r = await reader.read(new Uint8Array(buffer));
    // The read transfers the buffer: the returned view owns it now (the same memory).
    if (r.value) this.spare = r.value.buffer as ArrayBuffer;
    if (r.done) return { done: true, value: undefined };
    return { done: false, value: r.value as Uint8Array };
  }

  cancel(): Promise<void> {
    return (this.byob ?? (this.plain as ReadableStreamDefaultReader<Uint8Array>)).cancel();
  }
}

/**
 * Counts compressed bytes and stops past the limit; also enforces the idle timeout and the abort
 * signal between chunks.
 */
class ByteSource {
  private readonly reader: ChunkReader;
  private readonly maxBytes: number;
  private readonly idleMs: number | undefined;
  private readonly signal: AbortSignal | undefined;
  bytes = 0;

  constructor(stream: ReadableStream<Uint8Array>, maxBytes: number, options: SliceStreamOptions) {
    this.reader = new ChunkReader(stream);
    this.maxBytes = maxBytes;
    this.idleMs = options.idleTimeoutMs;
    this.signal = options.signal;
  }

  /** Chunks are consumed before the next read (the raw, not-gzip path): buffers may be reused. */
  set reuse(on: boolean) {
    this.reader.reuse = on;
  }

  async read(): Promise<Uint8Array | null> {
    if (this.signal?.aborted) throw new StreamAbortedError();
    const pending: Array<Promise<ReadableStreamReadResult<Uint8Array>>> = [this.reader.read()];
    let timer: ReturnType<typeof setTimeout> | undefined;
    let onAbort: (() => void) | undefined;
    if (this.idleMs !== undefined) {
      const ms = this.idleMs;
      pending.push(
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new StreamTimeoutError(ms)), ms);
        }),
      );
    }
    if (this.signal) {
      const signal = this.signal;
      pending.push(
        new Promise((_, reject) => {
          onAbort = () => reject(new StreamAbortedError());
          signal.addEventListener('abort', onAbort, { once: true });
        }),
      );
    }
    try {
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        result = await Promise.race(pending);
      } catch (e) {
        if (e instanceof FreeTumorError || e instanceof StreamAbortedError) throw e;
        // The platform's body stream fails when the client disconnects mid-upload.
        throw new StreamAbortedError('the client closed the request body');
      }
      const { done, value } = result;
      if (done) return null;
      this.bytes += value.byteLength;
      if (this.bytes > this.maxBytes)
        throw new LimitError('compressed bytes', this.maxBytes, `more than ${this.maxBytes}`);
      return value;
    } finally {
      if (timer !== undefined) clearTimeout(timer);
      if (onAbort) this.signal?.removeEventListener('abort', onAbort);
    }
  }

  cancel(): Promise<void> {
    return this.reader.cancel().catch(() => undefined);
  }
}

/** Decompressed bytes of the NIfTI stream, pulled on demand. */
class InflatedSource {
  private readonly source: ByteSource;
  private inflated: ChunkReader | null = null;
  private first: Uint8Array | null = null;
  /** The source's own failure (timeout, limit, disconnect), which the inflater may report otherwise. */
  private sourceError: unknown = null;

  constructor(source: ByteSource) {
    this.source = source;
  }

  async start(): Promise<void> {
    // Enough bytes to see gzip's magic (2 bytes).
    let head: Uint8Array = (await this.source.read()) ?? new Uint8Array(0);
    while (head.length < 2) {
      const more = await this.source.read();
      if (!more) break;
      head = concat(head, more);
    }
    if (head.length === 0) throw new NiftiError('invalid_nifti', 'the file is empty');
    if (head[0] === 0x1f && head[1] === 0x8b) {
      const src = this.source;
      const self = this;
      let pendingHead: Uint8Array | null = head;
      const compressed = new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (pendingHead) {
            controller.enqueue(pendingHead);
            pendingHead = null;
            return;
          }
          try {
            const chunk = await src.read();
            if (chunk) controller.enqueue(chunk);
            else controller.close();
          } catch (e) {
            self.sourceError = e;
            controller.error(e);
          }
        },
        cancel() {
          return src.cancel();
        },
      });
      // Output is pulled one chunk at a time (a BYOB read: at most READ_BYTES): a bomb is stopped one
      // chunk past what the header asked for.
      this.inflated = new ChunkReader(
        compressed.pipeThrough(
          new DecompressionStream('gzip') as unknown as ReadableWritablePair<Uint8Array, Uint8Array>,
        ),
      );
      // Inflated chunks are consumed before the next is read; the compressed ones are not (the
      // inflater holds them), so only the inflated side reuses its buffer.
      this.inflated.reuse = true;
    } else {
      this.first = head;
      this.source.reuse = true;
    }
  }

  async read(): Promise<Uint8Array | null> {
    if (this.first) {
      const f = this.first;
      this.first = null;
      return f;
    }
    if (!this.inflated) return this.source.read();
    try {
      const { done, value } = await this.inflated.read();
      return done ? null : value;
    } catch (e) {
      if (this.sourceError) throw this.sourceError;
      if (e instanceof FreeTumorError || e instanceof StreamAbortedError) throw e;
      const msg = e instanceof Error ? e.message : '';
      // zlib's own messages are fixed strings; a cut-off upload shows as an unexpected end.
      if (/end|EOF|incomplete|truncat/i.test(msg))
        throw new NiftiError('truncated', 'gzip stream is truncated');
      throw new NiftiError('invalid_nifti', 'gzip stream is corrupt');
    }
  }

  async cancel(): Promise<void> {
    if (this.inflated) await this.inflated.cancel().catch(() => undefined);
    await this.source.cancel();
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** A NIfTI stream opened for slice-by-slice reading. */
export class NiftiSliceReader {
  readonly info: NiftiHeaderInfo;
  /** Voxels per storage slice. */
  readonly sliceVoxels: number;
  private readonly src: InflatedSource;
  private readonly counter: ByteSource;
  private pending: Uint8Array;
  private pendingOff = 0;
  /** Bytes still to skip between the header and the voxel data (extensions). */
  private skip: number;
  private nextSlice = 0;
  private readonly ring: Uint8Array[];
  private readonly scaled: Array<Float32Array | Float64Array>;

  private constructor(
    info: NiftiHeaderInfo,
    src: InflatedSource,
    counter: ByteSource,
    rest: Uint8Array,
    skip: number,
    ringSize: number,
  ) {
    this.info = info;
    this.src = src;
    this.counter = counter;
    this.pending = rest;
    this.skip = skip;
    this.sliceVoxels = info.dims[0] * info.dims[1];
    const sliceBytes = this.sliceVoxels * info.bytesPerVoxel;
    // An 8-byte aligned backing store per slot, so every typed view is aligned.
    this.ring = Array.from(
      { length: ringSize },
      () => new Uint8Array(new ArrayBuffer(Math.ceil(sliceBytes / 8) * 8), 0, sliceBytes),
    );
    this.scaled = info.scaling
      ? Array.from({ length: ringSize }, () =>
          info.datatype === 'float64'
            ? new Float64Array(this.sliceVoxels)
            : new Float32Array(this.sliceVoxels),
        )
      : [];
  }

  /**
   * Opens the stream and reads and validates the header (nothing past it yet). `ringSize` slices are
   * recycled: a slice returned by `next()` stays valid until `ringSize - 1` more have been read.
   */
  static async open(
    stream: ReadableStream<Uint8Array>,
    options: SliceStreamOptions = {},
    ringSize = 3,
  ): Promise<NiftiSliceReader> {
    const limits = { ...DEFAULT_SLICE_LIMITS, ...options.limits };
    const counter = new ByteSource(stream, limits.maxCompressedBytes, options);
    const src = new InflatedSource(counter);
    try {
      await src.start();
      let head: Uint8Array = new Uint8Array(0);
      let need = 4;
      let info: NiftiHeaderInfo | null = null;
      while (!info) {
        while (head.length < need) {
          const chunk = await src.read();
          if (!chunk) {
            if (head.length < 4) throw new NiftiError('truncated', 'the file ends before the NIfTI header');
            throw new NiftiError('truncated', `NIfTI header is truncated (${head.length} of ${need} bytes)`);
          }
          head = concat(head, chunk);
        }
        if (need === 4) {
          const sniff = sniffHeader(head.subarray(0, 4));
          if (!sniff)
            throw new NiftiError('invalid_nifti', 'not a NIfTI file: sizeof_hdr is neither 348 nor 540');
          need = sniff.version === 2 ? NIFTI2_HEADER_BYTES : NIFTI1_HEADER_BYTES;
          continue;
        }
        info = parseNiftiHeader(head.subarray(0, need), limits);
      }
      const [nx, ny, nz] = info.dims;
      if (nx > limits.maxInPlane || ny > limits.maxInPlane)
        throw new LimitError('in-plane size', limits.maxInPlane, `${nx}x${ny}`);
      if (nz > limits.maxSlices) throw new LimitError('slices', limits.maxSlices, nz);
      const rest = head.subarray(need);
      return new NiftiSliceReader(info, src, counter, rest, info.voxOffset - need, Math.max(2, ringSize));
    } catch (e) {
      await src.cancel();
      throw e;
    }
  }

  /** Compressed (on-the-wire) bytes read so far. */
  get bytesRead(): number {
    return this.counter.bytes;
  }

  /** Storage slices read so far. */
  get slicesRead(): number {
    return this.nextSlice;
  }

  /**
   * The next storage slice (index i + nx * j), or null after the last one. Values are the on-disk
   * typed array in host order, or float32 (float64 for float64 data) with the scaling applied.
   */
  async next(): Promise<VoxelArray | null> {
    const info = this.info;
    if (this.nextSlice >= info.dims[2]) {
      // Nothing more is needed: stop the upload (and any inflating) here.
      await this.src.cancel();
      return null;
    }
    const slot = this.nextSlice % this.ring.length;
    const out = this.ring[slot];
    let filled = 0;
    while (filled < out.length) {
      if (this.pendingOff >= this.pending.length) {
        const chunk = await this.src.read();
        if (!chunk) throw this.truncated(filled);
        this.pending = chunk;
        this.pendingOff = 0;
      }
      if (this.skip > 0) {
        const n = Math.min(this.skip, this.pending.length - this.pendingOff);
        this.skip -= n;
        this.pendingOff += n;
        continue;
      }
      const n = Math.min(out.length - filled, this.pending.length - this.pendingOff);
      out.set(this.pending.subarray(this.pendingOff, this.pendingOff + n), filled);
      filled += n;
      this.pendingOff += n;
    }
    this.nextSlice++;
    toHostOrder(out, info.bytesPerVoxel, info.littleEndian);
    const raw = typedArrayOn(info.datatype, out.buffer as ArrayBuffer, out.byteOffset, this.sliceVoxels);
    if (!info.scaling) return raw;
    const scaled = this.scaled[slot];
    const { slope, inter } = info.scaling;
    for (let i = 0; i < raw.length; i++) scaled[i] = raw[i] * slope + inter;
    return scaled;
  }

  private truncated(filledInSlice: number): NiftiError {
    const info = this.info;
    const got = this.nextSlice * this.sliceVoxels * info.bytesPerVoxel + filledInSlice;
    if (this.skip > 0 || got <= 0)
      return new NiftiError('truncated', 'vox_offset points past the end of the decompressed stream');
    return new NiftiError('truncated', `voxel data are truncated: ${got} of ${info.dataBytes} bytes present`);
  }

  /** Stops reading (the rest of the body is discarded). */
  cancel(): Promise<void> {
    return this.src.cancel();
  }
}

/** The whole volume of an opened reader (what `readNifti` gives), for inputs small enough to hold. */
export async function readSliceVolume(reader: NiftiSliceReader): Promise<Volume> {
  const info = reader.info;
  const n = reader.sliceVoxels;
  let data: VoxelArray | null = null;
  for (let k = 0; ; k++) {
    const slice = await reader.next();
    if (!slice) break;
    data ??= new (slice.constructor as new (n: number) => VoxelArray)(n * info.dims[2]);
    (data as Float64Array).set(slice as Float64Array, k * n);
  }
  if (!data) throw new NiftiError('truncated', 'the volume has no slices');
  return { dims: [...info.dims], data, affine: Float64Array.from(info.affine), datatype: info.datatype };
}

/** A ReadableStream over bytes already in memory (tests, the CLI's small inputs). */
export function streamOfBytes(bytes: Uint8Array, chunk = 1 << 20): ReadableStream<Uint8Array> {
  let pos = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (pos >= bytes.length) {
        controller.close();
        return;
      }
      const end = Math.min(bytes.length, pos + chunk);
      controller.enqueue(bytes.slice(pos, end));
      pos = end;
    },
  });
}
