/**
 * A minimal reader of the ONNX protobuf (onnx.proto3): the model's graph, nodes, attributes,
 * initializers and graph inputs/outputs, which is all the engine needs. Written here rather than
 * using onnx-proto (protobufjs) so the Worker bundle carries no code generator and no eval path;
 * field numbers are those of onnx/onnx.proto (IR version 8).
 */
import { FreeTumorError } from '../errors.ts';

export const DataType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7 } as const;

export interface OnnxTensor {
  name: string;
  dims: number[];
  dataType: number;
  /** Little-endian raw bytes (raw_data), or null when the values are in the typed fields. */
  raw: Uint8Array | null;
  floats: number[];
  ints: number[];
}

export interface OnnxAttribute {
  name: string;
  f?: number;
  i?: number;
  s?: string;
  t?: OnnxTensor;
  floats: number[];
  ints: number[];
}

export interface OnnxNode {
  opType: string;
  domain: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attributes: Map<string, OnnxAttribute>;
}

export interface OnnxValueInfo {
  name: string;
  elemType: number;
  /** A number for a fixed dim, a string for a symbolic one, null when unknown. */
  dims: Array<number | string | null>;
}

export interface OnnxGraph {
  nodes: OnnxNode[];
  initializers: Map<string, OnnxTensor>;
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  /** Opset of the default domain. */
  opset: number;
}

class Reader {
  readonly buf: Uint8Array;
  readonly end: number;
  pos: number;
  constructor(buf: Uint8Array, start = 0, end = buf.length) {
    this.buf = buf;
    this.pos = start;
    this.end = end;
  }

  done(): boolean {
    return this.pos >= this.end;
  }

  /** An unsigned varint up to 64 bits, as a number (exact below 2^53); int64 negatives come back negative. */
  varint(): number {
    let value = 0;
    for (let shift = 0; shift < 28; shift += 7) {
      if (this.pos >= this.end) throw bad('truncated varint');
      const b = this.buf[this.pos++];
      value |= (b & 0x7f) << shift;
      if (!(b & 0x80)) return value;
    }
    // Long varints (large or negative int64): exact through BigInt, then to the nearest number.
    let big = BigInt(value);
    for (let shift = 28n; shift < 70n; shift += 7n) {
      if (this.pos >= this.end) throw bad('truncated varint');
      const b = this.buf[this.pos++];
      big |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return Number(BigInt.asIntN(64, big));
    }
    throw bad('varint longer than 10 bytes');
  }

  bytes(): Uint8Array {
    const n = this.varint();
    if (this.pos + n > this.end) throw bad('truncated field');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  sub(): Reader {
    const n = this.varint();
    if (this.pos + n > this.end) throw bad('truncated message');
    const r = new Reader(this.buf, this.pos, this.pos + n);
    this.pos += n;
    return r;
  }

  string(): string {
    return new TextDecoder().decode(this.bytes());
  }

  float32(): number {
    if (this.pos + 4 > this.end) throw bad('truncated float');
    const v = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 4).getFloat32(0, true);
    this.pos += 4;
    return v;
  }

  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) {
      const n = this.varint();
      this.pos += n;
    } else if (wire === 5) this.pos += 4;
    else throw bad(`unsupported wire type ${wire}`);
    if (this.pos > this.end) throw bad('truncated field');
  }

  /** Repeated varints, packed or not. */
  varints(wire: number, into: number[]): void {
    if (wire !== 2) {
      into.push(this.varint());
      return;
    }
    const r = this.sub();
    while (!r.done()) into.push(r.varint());
  }

  floats(wire: number, into: number[]): void {
    if (wire !== 2) {
      into.push(this.float32());
      return;
    }
    const r = this.sub();
    while (!r.done()) into.push(r.float32());
  }
}

function bad(why: string): FreeTumorError {
  return new FreeTumorError('model_integrity', `the ONNX model cannot be read: ${why}`);
}

function fields(r: Reader, on: (field: number, wire: number) => boolean): void {
  while (!r.done()) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (!on(field, wire)) r.skip(wire);
  }
}

function readTensor(r: Reader): OnnxTensor {
  const t: OnnxTensor = { name: '', dims: [], dataType: 0, raw: null, floats: [], ints: [] };
  fields(r, (f, w) => {
    if (f === 1) r.varints(w, t.dims);
    else if (f === 2) t.dataType = r.varint();
    else if (f === 4) r.floats(w, t.floats);
    else if (f === 5 || f === 7) r.varints(w, t.ints);
    else if (f === 8) t.name = r.string();
    else if (f === 9) t.raw = r.bytes();
    else if (f === 14) {
      if (r.varint() === 1) throw bad(`tensor ${t.name} keeps its data in an external file`);
    } else return false;
    return true;
  });
  return t;
}

function readAttribute(r: Reader): OnnxAttribute {
  const a: OnnxAttribute = { name: '', floats: [], ints: [] };
  fields(r, (f, w) => {
    if (f === 1) a.name = r.string();
    else if (f === 2) a.f = r.float32();
    else if (f === 3) a.i = r.varint();
    else if (f === 4) a.s = r.string();
    else if (f === 5) a.t = readTensor(r.sub());
    else if (f === 7) r.floats(w, a.floats);
    else if (f === 8) r.varints(w, a.ints);
    else return false;
    return true;
  });
  return a;
}

function readNode(r: Reader): OnnxNode {
  const n: OnnxNode = { opType: '', domain: '', name: '', inputs: [], outputs: [], attributes: new Map() };
  fields(r, (f) => {
    if (f === 1) n.inputs.push(r.string());
    else if (f === 2) n.outputs.push(r.string());
    else if (f === 3) n.name = r.string();
    else if (f === 4) n.opType = r.string();
    else if (f === 5) {
      const a = readAttribute(r.sub());
      n.attributes.set(a.name, a);
    } else if (f === 7) n.domain = r.string();
    else return false;
    return true;
  });
  return n;
}

function readValueInfo(r: Reader): OnnxValueInfo {
  const v: OnnxValueInfo = { name: '', elemType: 0, dims: [] };
  fields(r, (f) => {
    if (f === 1) v.name = r.string();
    else if (f === 2) {
      // TypeProto.tensor_type (1) -> elem_type (1), shape (2) -> dim (1) -> dim_value (1) | dim_param (2).
      const type = r.sub();
      fields(type, (tf) => {
        if (tf !== 1) return false;
        const tensor = type.sub();
        fields(tensor, (ff) => {
          if (ff === 1) v.elemType = tensor.varint();
          else if (ff === 2) {
            const shape = tensor.sub();
            fields(shape, (sf) => {
              if (sf !== 1) return false;
              const dim = shape.sub();
              let value: number | string | null = null;
              fields(dim, (df) => {
                if (df === 1) value = dim.varint();
                else if (df === 2) value = dim.string();
                else return false;
                return true;
              });
              v.dims.push(value);
              return true;
            });
          } else return false;
          return true;
        });
        return true;
      });
    } else return false;
    return true;
  });
  return v;
}

/** Decodes an ONNX model file (the ModelProto bytes). */
export function readOnnx(input: Uint8Array): OnnxGraph {
  // A plain view: a Node Buffer's slice() does not copy, which tensorValues relies on.
  const bytes = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  const r = new Reader(bytes);
  let graph: Reader | null = null;
  let opset = 0;
  fields(r, (f) => {
    if (f === 7) graph = r.sub();
    else if (f === 8) {
      const o = r.sub();
      let domain = '';
      let version = 0;
      fields(o, (of) => {
        if (of === 1) domain = o.string();
        else if (of === 2) version = o.varint();
        else return false;
        return true;
      });
      if (domain === '' || domain === 'ai.onnx') opset = version;
    } else return false;
    return true;
  });
  if (!graph) throw bad('no graph');
  const g: OnnxGraph = { nodes: [], initializers: new Map(), inputs: [], outputs: [], opset };
  const gr: Reader = graph;
  fields(gr, (f) => {
    if (f === 1) g.nodes.push(readNode(gr.sub()));
    else if (f === 5) {
      const t = readTensor(gr.sub());
      g.initializers.set(t.name, t);
    } else if (f === 11) g.inputs.push(readValueInfo(gr.sub()));
    else if (f === 12) g.outputs.push(readValueInfo(gr.sub()));
    else return false;
    return true;
  });
  return g;
}

/** An initializer's values as float32 (FLOAT, or INT8/UINT8/INT32/INT64 converted). */
export function tensorValues(t: OnnxTensor): Float32Array {
  const n = t.dims.reduce((a, b) => a * b, 1);
  let out: Float32Array;
  if (t.raw) {
    const raw = t.raw;
    const copy = raw.slice().buffer;
    if (t.dataType === DataType.FLOAT) out = new Float32Array(copy, 0, raw.length / 4);
    else if (t.dataType === DataType.INT8) out = Float32Array.from(new Int8Array(copy));
    else if (t.dataType === DataType.UINT8) out = Float32Array.from(new Uint8Array(copy));
    else if (t.dataType === DataType.INT32) out = Float32Array.from(new Int32Array(copy, 0, raw.length / 4));
    else if (t.dataType === DataType.INT64) {
      out = Float32Array.from(new BigInt64Array(copy, 0, raw.length / 8), (v) => Number(v));
    } else throw bad(`tensor ${t.name} has data type ${t.dataType}`);
  } else if (t.dataType === DataType.FLOAT) out = Float32Array.from(t.floats);
  else out = Float32Array.from(t.ints);
  if (out.length !== n) throw bad(`tensor ${t.name} has ${out.length} values for dims ${t.dims.join('x')}`);
  return out;
}
