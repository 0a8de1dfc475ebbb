// wrangler's default rule (`**/*.wasm` -> CompiledWasm) turns a .wasm import into a precompiled module:
// workerd forbids compiling wasm from bytes at run time, so this is the only way ORT's binary gets in.
declare module '*.wasm' {
  const module: WebAssembly.Module;
  export default module;
}
