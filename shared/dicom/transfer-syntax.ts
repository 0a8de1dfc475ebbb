/**
 * The transfer syntaxes a CT series may arrive in, and which of them we decode. Native (uncompressed)
 * and deflated data are read by dcmjs itself; the lossless compressed ones need a frame decoder, which
 * the runtime injects (the CLI registers the cornerstone codecs: trainer/io/dicom-codecs.ts). Anything
 * else is refused with an error that names the syntax, never decoded by guesswork.
 */
import { FreeTumorError } from '../errors.ts';

export type PixelEncoding = 'native' | 'rle' | 'jpeg-lossless' | 'jpeg-ls' | 'jpeg2000';

interface SyntaxInfo {
  name: string;
  encoding: PixelEncoding | null;
  /** Lossy codecs change HU values; we refuse them rather than segment altered intensities silently. */
  lossy?: boolean;
}

export const TRANSFER_SYNTAXES: Readonly<Record<string, SyntaxInfo>> = {
  '1.2.840.10008.1.2': { name: 'Implicit VR Little Endian', encoding: 'native' },
  '1.2.840.10008.1.2.1': { name: 'Explicit VR Little Endian', encoding: 'native' },
  '1.2.840.10008.1.2.1.99': { name: 'Deflated Explicit VR Little Endian', encoding: 'native' },
  '1.2.840.10008.1.2.2': { name: 'Explicit VR Big Endian (retired)', encoding: null },
  '1.2.840.10008.1.2.5': { name: 'RLE Lossless', encoding: 'rle' },
  '1.2.840.10008.1.2.4.57': {
    name: 'JPEG Lossless, Non-Hierarchical (Process 14)',
    encoding: 'jpeg-lossless',
  },
  '1.2.840.10008.1.2.4.70': {
    name: 'JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14, SV1)',
    encoding: 'jpeg-lossless',
  },
  '1.2.840.10008.1.2.4.80': { name: 'JPEG-LS Lossless', encoding: 'jpeg-ls' },
  '1.2.840.10008.1.2.4.81': { name: 'JPEG-LS Lossy (Near-Lossless)', encoding: null, lossy: true },
  '1.2.840.10008.1.2.4.90': { name: 'JPEG 2000 Lossless Only', encoding: 'jpeg2000' },
  '1.2.840.10008.1.2.4.91': { name: 'JPEG 2000 (lossy allowed)', encoding: null, lossy: true },
  '1.2.840.10008.1.2.4.50': { name: 'JPEG Baseline (Process 1, lossy)', encoding: null, lossy: true },
  '1.2.840.10008.1.2.4.51': { name: 'JPEG Extended (Process 2 & 4, lossy)', encoding: null, lossy: true },
  '1.2.840.10008.1.2.4.201': { name: 'High-Throughput JPEG 2000 Lossless', encoding: null },
  '1.2.840.10008.1.2.4.202': { name: 'High-Throughput JPEG 2000 (RPCL) Lossless', encoding: null },
  '1.2.840.10008.1.2.4.203': { name: 'High-Throughput JPEG 2000', encoding: null, lossy: true },
};

/** Decodes one compressed frame into its stored values (little-endian bytes, BitsAllocated wide). */
export type FrameDecoder = (
  frame: Uint8Array,
  info: { rows: number; columns: number; bitsAllocated: number; signed: boolean },
) => Uint8Array | Promise<Uint8Array>;

export type FrameDecoders = Partial<Record<Exclude<PixelEncoding, 'native'>, FrameDecoder>>;

/** The encoding of a syntax we can decode with the given decoders, or a clear error naming it. */
export function pixelEncodingOf(uid: string, decoders: FrameDecoders): PixelEncoding {
  const info = TRANSFER_SYNTAXES[uid];
  const label = info ? `${info.name} (${uid})` : `${safeUid(uid)} (unknown)`;
  if (!info || info.encoding === null) {
    const why = info?.lossy ? ': lossy compression alters HU values' : '';
    throw new FreeTumorError(
      'unsupported_datatype',
      `DICOM transfer syntax ${label} is not supported${why}; supported: ${supportedList(decoders)}`,
    );
  }
  if (info.encoding !== 'native' && !decoders[info.encoding]) {
    throw new FreeTumorError(
      'unsupported_datatype',
      `DICOM transfer syntax ${label} needs a decoder this runtime does not have; supported here: ${supportedList(decoders)}`,
    );
  }
  return info.encoding;
}

function supportedList(decoders: FrameDecoders): string {
  return Object.entries(TRANSFER_SYNTAXES)
    .filter(([, s]) => s.encoding === 'native' || (s.encoding !== null && decoders[s.encoding]))
    .map(([, s]) => s.name)
    .join(', ');
}

/** A UID is digits and dots; anything else is not echoed. */
export function safeUid(uid: string): string {
  return /^[0-9.]{1,64}$/.test(uid) ? uid : '<malformed UID>';
}
