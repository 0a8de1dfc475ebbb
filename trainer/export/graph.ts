/**
 * Small helpers to build an ONNX graph as plain protobuf objects: initializers from Float32Array or
 * Int8Array (little-endian raw data), nodes with typed attributes, float tensors with symbolic dims.
 */
import { type OnnxTypes, onnx } from './proto.ts';

export type AttrValue = number | number[] | string | { float: number };

export class GraphBuilder {
  readonly nodes: OnnxTypes.INodeProto[] = [];
  readonly initializers: OnnxTypes.ITensorProto[] = [];
  private readonly used = new Set<string>();

  /** A tensor name not used yet, derived from `base`. */
  unique(base: string): string {
    const clean = base.replace(/[^0-9A-Za-z_./-]/g, '_');
    let name = clean;
    for (let i = 1; this.used.has(name); i++) name = `${clean}_${i}`;
    this.used.add(name);
    return name;
  }

  reserve(name: string): void {
    this.used.add(name);
  }

  floatInit(base: string, dims: number[], values: Float32Array): string {
    const name = this.unique(base);
    this.initializers.push(tensorProto(name, onnx.TensorProto.DataType.FLOAT, dims, values));
    return name;
  }

  int64Init(base: string, values: number[]): string {
    const name = this.unique(base);
    this.initializers.push({
      name,
      dataType: onnx.TensorProto.DataType.INT64,
      dims: [values.length],
      int64Data: values,
    });
    return name;
  }

  node(opType: string, inputs: string[], outputBase: string, attrs: Record<string, AttrValue> = {}): string {
    const out = this.unique(outputBase);
    this.nodes.push({
      opType,
      name: this.unique(`${opType}_${out}`),
      input: inputs,
      output: [out],
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return out;
  }
}

export function tensorProto(
  name: string,
  dataType: number,
  dims: number[],
  values: Float32Array | Int8Array,
): OnnxTypes.ITensorProto {
  // ONNX raw data is little-endian; so is every platform Node and Workers run on.
  return {
    name,
    dataType,
    dims,
    rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength).slice(),
  };
}

function attribute(name: string, v: AttrValue): OnnxTypes.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  if (typeof v === 'object') return { name, type: T.FLOAT, f: v.float };
  return { name, type: T.INT, i: v };
}

/** A float32 value info with a mix of fixed and symbolic dims. */
export function floatValueInfo(name: string, dims: Array<number | string>): OnnxTypes.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}
