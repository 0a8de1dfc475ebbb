/**
 * Consumes a decompressed NIfTI stream chunk by chunk: the header from the first bytes (then
 * validated against the limits), then the voxel data copied straight into a buffer of the
 * size the header gives. `push` returns false once the data are complete, so the producer
 * (fflate, or the platform's DecompressionStream) can stop inflating: a gzip bomb never
 * inflates past the data the header announced, and that size is capped by the limits.
 */
import { NiftiError } from '../errors.ts';
import {
  NIFTI1_HEADER_BYTES,
  NIFTI2_HEADER_BYTES,
  type NiftiHeaderInfo,
  type NiftiLimits,
  parseNiftiHeader,
  sniffHeader,
} from './nifti-header.ts';

export class NiftiStreamParser {
  private readonly limits: NiftiLimits;
  private readonly headerOnly: boolean;
  private head = new Uint8Array(NIFTI2_HEADER_BYTES);
  private headNeed = 4;
  private have = 0;
  private info: NiftiHeaderInfo | null = null;
  private data: Uint8Array | null = null;
  /** Position in the decompressed stream, once the header is parsed. */
  private pos = 0;

  constructor(limits: NiftiLimits, headerOnly = false) {
    this.limits = limits;
    this.headerOnly = headerOnly;
  }

  /** Takes the next decompressed bytes; false when nothing more is needed. */
  push(chunk: Uint8Array): boolean {
    let off = 0;
    while (off < chunk.length) {
      const info = this.info;
      if (!info) {
        off += this.pushHeader(chunk, off);
        if (this.info && this.headerOnly) return false;
        continue;
      }
      const end = info.voxOffset + info.dataBytes;
      const take = Math.min(chunk.length - off, end - this.pos);
      if (this.pos + take > info.voxOffset && this.data) {
        const from = Math.max(this.pos, info.voxOffset);
        this.data.set(chunk.subarray(off + (from - this.pos), off + take), from - info.voxOffset);
      }
      this.pos += take;
      off += take;
      if (this.pos >= end) return false;
    }
    return true;
  }

  private pushHeader(chunk: Uint8Array, off: number): number {
    const n = Math.min(chunk.length - off, this.headNeed - this.have);
    this.head.set(chunk.subarray(off, off + n), this.have);
    this.have += n;
    if (this.have < this.headNeed) return n;
    if (this.headNeed === 4) {
      const sniff = sniffHeader(this.head.subarray(0, 4));
      if (!sniff)
        throw new NiftiError('invalid_nifti', 'not a NIfTI file: sizeof_hdr is neither 348 nor 540');
      this.headNeed = sniff.version === 2 ? NIFTI2_HEADER_BYTES : NIFTI1_HEADER_BYTES;
      return n;
    }
    const info = parseNiftiHeader(this.head.subarray(0, this.headNeed), this.limits);
    this.info = info;
    this.pos = this.headNeed;
    if (!this.headerOnly) this.data = new Uint8Array(info.dataBytes);
    return n;
  }

  /** The header once it has been parsed, else null. */
  get parsed(): NiftiHeaderInfo | null {
    return this.info;
  }

  /** The parsed header; throws when the stream ended before it. */
  header(): NiftiHeaderInfo {
    if (this.info) return this.info;
    if (this.have < 4) throw new NiftiError('truncated', 'the file ends before the NIfTI header');
    throw new NiftiError('truncated', `NIfTI header is truncated (${this.have} of ${this.headNeed} bytes)`);
  }

  /** Header and voxel bytes (file byte order); throws when the stream ended early. */
  finish(): { info: NiftiHeaderInfo; data: Uint8Array } {
    const info = this.header();
    const data = this.data as Uint8Array;
    const got = this.pos - info.voxOffset;
    if (got < info.dataBytes) {
      if (got <= 0)
        throw new NiftiError('truncated', 'vox_offset points past the end of the decompressed stream');
      throw new NiftiError(
        'truncated',
        `voxel data are truncated: ${got} of ${info.dataBytes} bytes present`,
      );
    }
    return { info, data };
  }
}
