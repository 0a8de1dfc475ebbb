/**
 * The ONNX protobuf schema (onnx-proto: protobufjs classes in a CommonJS module) under one name, so
 * the exporter and the quantizer import `onnx` (values) and `OnnxTypes` (types) from here.
 */
import onnxProto from 'onnx-proto';

export const onnx = onnxProto.onnx;
export type { onnx as OnnxTypes } from 'onnx-proto';
