// Compile-time stand-in for the module wasm-bindgen generates next to the compiled files
// (pkg/ferrosync.js): the hand-written API declarations plus wasm-bindgen's loader. Declaration
// inputs are not emitted, so the compiled modules import the generated file itself.
export * from '../ferrosync';

/** Loads and instantiates the WebAssembly module; call (and await) it once before use. */
export default function init(
  moduleOrPath?: { module_or_path: RequestInfo | URL | Response | BufferSource | WebAssembly.Module },
): Promise<unknown>;
