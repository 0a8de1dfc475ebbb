/**
 * Frame decoders for the compressed lossless DICOM transfer syntaxes, from maintained npm packages:
 * the cornerstone codecs (CharLS for JPEG-LS, OpenJPEG for JPEG 2000; WebAssembly shipped inside the
 * packages, nothing downloaded) and jpeg-lossless-decoder-js for JPEG Lossless (Process 14). Each is
 * loaded on its first frame only, so reading a native series costs none of them.
 */
import { createRequire } from 'node:module';
import type { FrameDecoder, FrameDecoders } from '../../shared/dicom/transfer-syntax.ts';
import { FreeTumorError } from '../../shared/errors.ts';

const require = createRequire(import.meta.url);

interface EmscriptenDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  decode(): void;
  getDecodedBuffer(): Uint8Array;
  getFrameInfo(): { width: number; height: number; bitsPerSample: number; componentCount: number };
  delete(): void;
}
type CodecModule = Record<string, new () => EmscriptenDecoder>;

function once<T>(load: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | null = null;
  return () => {
    p ??= load();
    return p;
  };
}

// The Emscripten modules print codec chatter ("[INFO] ...") on stdout, which must stay machine-readable.
const quiet = { print: () => undefined, printErr: () => undefined };
const charls = once(
  async () => (await require('@cornerstonejs/codec-charls/decodewasmjs')(quiet)) as CodecModule,
);
const openjpeg = once(
  async () => (await require('@cornerstonejs/codec-openjpeg/decodewasmjs')(quiet)) as CodecModule,
);

function failed(codec: string): FreeTumorError {
  return new FreeTumorError('invalid_argument', `a DICOM frame could not be decoded (${codec})`);
}

function emscripten(load: () => Promise<CodecModule>, className: string, codec: string): FrameDecoder {
  return async (frame, info) => {
    const mod = await load();
    const decoder = new mod[className]();
    try {
      decoder.getEncodedBuffer(frame.length).set(frame);
      decoder.decode();
      const f = decoder.getFrameInfo();
      if (f.width !== info.columns || f.height !== info.rows || f.componentCount !== 1) {
        throw new FreeTumorError(
          'invalid_argument',
          `a ${codec} frame is ${f.width}x${f.height}x${f.componentCount}, the header says ${info.columns}x${info.rows}x1`,
        );
      }
      return decoder.getDecodedBuffer().slice(); // copy out of the WebAssembly heap
    } catch (e) {
      if (e instanceof FreeTumorError) throw e;
      throw failed(codec);
    } finally {
      decoder.delete();
    }
  };
}

const jpegLossless: FrameDecoder = async (frame, info) => {
  const { Decoder } = await import('jpeg-lossless-decoder-js');
  const decoder = new Decoder();
  let out: Uint8Array | Uint16Array;
  try {
    out = decoder.decode(
      frame.buffer as ArrayBuffer,
      frame.byteOffset,
      frame.length,
      info.bitsAllocated / 8,
    ) as Uint8Array | Uint16Array;
  } catch {
    throw failed('JPEG Lossless');
  }
  if (out.length !== info.rows * info.columns)
    throw new FreeTumorError('invalid_argument', 'a JPEG Lossless frame does not match the header size');
  // Uint16Array in host order; every platform Node runs on is little-endian.
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
};

export const NODE_DICOM_DECODERS: FrameDecoders = {
  'jpeg-lossless': jpegLossless,
  'jpeg-ls': emscripten(charls, 'JpegLSDecoder', 'JPEG-LS'),
  jpeg2000: emscripten(openjpeg, 'J2KDecoder', 'JPEG 2000'),
};
