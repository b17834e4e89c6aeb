/**
 * A fast 32-bit checksum of bytes, to catch a file damaged on disk (not an
 * attacker: a file someone else can write is refused before it is read).
 *
 * @module
 */

// The function (xxHash64's round and final mix over 8-byte little-endian words, the last one
// padded with zeros, the length mixed in; the low 32 bits), as WebAssembly: 16 copies of `r`
// (exported as r0 … r15), each summing one 64 KiB chunk into the global state, and `end`:
//
//   (module (memory (export "memory") 1) (global $h (mut i64) (i64.const 0x27D4EB2F165667C5))
//     (func (export "r0") (param $i i32) (param $end i32) (local $h i64)
//       (local.set $h (global.get $h))
//       (block $done (loop $next
//         (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
//         (local.set $h (i64.mul (i64.rotl (i64.xor (local.get $h)
//           (i64.mul (i64.load (local.get $i)) (i64.const 0xC2B2AE3D27D4EB4F))) (i64.const 31)) (i64.const 0x9E3779B185EBCA87)))
//         (local.set $i (i32.add (local.get $i) (i32.const 8))) (br $next)))
//       (global.set $h (local.get $h)))
//     … r1 to r15, the same …
//     (func (export "end") (param $len i32) (result i32) (local $h i64)
//       (local.set $h (i64.xor (global.get $h) (i64.extend_i32_u (local.get $len))))
//       (local.set $h (i64.mul (i64.xor (local.get $h) (i64.shr_u (local.get $h) (i64.const 33))) (i64.const 0xC2B2AE3D27D4EB4F)))
//       (local.set $h (i64.mul (i64.xor (local.get $h) (i64.shr_u (local.get $h) (i64.const 29))) (i64.const 0x165667B19E3779F9)))
//       (i32.wrap_i64 (i64.xor (local.get $h) (i64.shr_u (local.get $h) (i64.const 32))))))
//
// Why not zlib's crc32: node:zlib loads Node's streams, ~1.7 ms of CPU of each `import('dockless')`
// that checks its code cache; Node's crypto costs more; a JavaScript loop over the ~0.5 MB cache
// runs cold, 2-4 ms. This sums it in ~1.2 ms of CPU. Why copies: V8 recompiles a WebAssembly
// function with TurboFan (~0.7 ms of CPU, on another thread) once its baseline code has run about
// 100 KB of this loop; each copy runs at most 64 KiB, so none is recompiled for a cache up to 1 MiB.
// Each step of the loop is a bijection of the running state for a given word and of the word for
// a given state, so bytes changed within one word always change the 64-bit state; 32 bits of it are
// kept (as CRC-32 did).
const WASM =
  'AGFzbQEAAAABCwJgAn9/AGABfwF/AxIRAAAAAAAAAAAAAAAAAAAAAAEFAwEAAQYOAX4BQsXP2bLx5brqJwsHZhIGbWVtb3J5AgACcjAAAAJyMQABAnIyAAICcjMAAwJyNAAEAnI1AAUCcjYABgJyNwAHAnI4AAgCcjkACQNyMTAACgNyMTEACwNyMTIADANyMTMADQNyMTQADgNyMTUADwNlbmQAEAqxCRFGAQF+IwAhAgJAA0AgACABTw0BIAIgACkDAELP1tO+0ser2UJ+hUIfiUKHla+vmLbem55/fiECIABBCGohAAwACwsgAiQAC0YBAX4jACECAkADQCAAIAFPDQEgAiAAKQMAQs/W077Sx6vZQn6FQh+JQoeVr6+Ytt6bnn9+IQIgAEEIaiEADAALCyACJAALRgEBfiMAIQICQANAIAAgAU8NASACIAApAwBCz9bTvtLHq9lCfoVCH4lCh5Wvr5i23puef34hAiAAQQhqIQAMAAsLIAIkAAtGAQF+IwAhAgJAA0AgACABTw0BIAIgACkDAELP1tO+0ser2UJ+hUIfiUKHla+vmLbem55/fiECIABBCGohAAwACwsgAiQAC0YBAX4jACECAkADQCAAIAFPDQEgAiAAKQMAQs/W077Sx6vZQn6FQh+JQoeVr6+Ytt6bnn9+IQIgAEEIaiEADAALCyACJAALRgEBfiMAIQICQANAIAAgAU8NASACIAApAwBCz9bTvtLHq9lCfoVCH4lCh5Wvr5i23puef34hAiAAQQhqIQAMAAsLIAIkAAtGAQF+IwAhAgJAA0AgACABTw0BIAIgACkDAELP1tO+0ser2UJ+hUIfiUKHla+vmLbem55/fiECIABBCGohAAwACwsgAiQAC0YBAX4jACECAkADQCAAIAFPDQEgAiAAKQMAQs/W077Sx6vZQn6FQh+JQoeVr6+Ytt6bnn9+IQIgAEEIaiEADAALCyACJAALRgEBfiMAIQICQANAIAAgAU8NASACIAApAwBCz9bTvtLHq9lCfoVCH4lCh5Wvr5i23puef34hAiAAQQhqIQAMAAsLIAIkAAtGAQF+IwAhAgJAA0AgACABTw0BIAIgACkDAELP1tO+0ser2UJ+hUIfiUKHla+vmLbem55/fiECIABBCGohAAwACwsgAiQAC0YBAX4jACECAkADQCAAIAFPDQEgAiAAKQMAQs/W077Sx6vZQn6FQh+JQoeVr6+Ytt6bnn9+IQIgAEEIaiEADAALCyACJAALRgEBfiMAIQICQANAIAAgAU8NASACIAApAwBCz9bTvtLHq9lCfoVCH4lCh5Wvr5i23puef34hAiAAQQhqIQAMAAsLIAIkAAtGAQF+IwAhAgJAA0AgACABTw0BIAIgACkDAELP1tO+0ser2UJ+hUIfiUKHla+vmLbem55/fiECIABBCGohAAwACwsgAiQAC0YBAX4jACECAkADQCAAIAFPDQEgAiAAKQMAQs/W077Sx6vZQn6FQh+JQoeVr6+Ytt6bnn9+IQIgAEEIaiEADAALCyACJAALRgEBfiMAIQICQANAIAAgAU8NASACIAApAwBCz9bTvtLHq9lCfoVCH4lCh5Wvr5i23puef34hAiAAQQhqIQAMAAsLIAIkAAtGAQF+IwAhAgJAA0AgACABTw0BIAIgACkDAELP1tO+0ser2UJ+hUIfiUKHla+vmLbem55/fiECIABBCGohAAwACwsgAiQACz8BAX4jACAArYUhASABIAFCIYiFQs/W077Sx6vZQn4hASABIAFCHYiFQvnz3fGZ9pmrFn4hASABIAFCIIiFpws=';
const COPIES = 16;
const CHUNK = 65536;

const PAGE = 65536;
// Below this many bytes (a cache file's name) the JavaScript form is cheaper than making an instance (~0.3 ms).
const SMALL = 1024;

// What is used of WebAssembly (the project's TypeScript libraries do not declare it); absent under --jitless.
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: Record<string, (...args: number[]) => number> & { memory: { buffer: ArrayBuffer; grow(pages: number): number } } };
}
const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
// Compiled once; instantiated per call, so the memory a large input grew is not kept.
let compiled: object | null | undefined;

/**
 * The checksum of `data` (see the function above), by WebAssembly, or by
 * {@link checksumPortable} when it is short or WebAssembly is not available
 * (`--jitless`).
 *
 * @param data - the bytes, or a string taken as its UTF-8 encoding
 * @returns an unsigned 32-bit integer
 */
export function checksum(data: Uint8Array | string): number {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  if (bytes.length < SMALL) return checksumPortable(bytes);
  if (compiled === undefined) {
    try {
      compiled = wasm !== undefined ? new wasm.Module(Buffer.from(WASM, 'base64')) : null;
    } catch {
      compiled = null;
    }
  }
  if (compiled === null || wasm === undefined) return checksumPortable(bytes);
  const { exports } = new wasm.Instance(compiled);
  const { memory } = exports;
  // The last word is read whole: 8 zero bytes follow the data.
  const need = bytes.length + 8;
  if (need > memory.buffer.byteLength) memory.grow(Math.ceil((need - memory.buffer.byteLength) / PAGE));
  new Uint8Array(memory.buffer).set(bytes);
  for (let at = 0, copy = 0; at < bytes.length; at += CHUNK, copy = (copy + 1) % COPIES) exports[`r${copy}`]!(at, Math.min(at + CHUNK, bytes.length));
  return exports.end!(bytes.length) >>> 0;
}

const P1 = 0x9e3779b185ebca87n;
const P2 = 0xc2b2ae3d27d4eb4fn;
const P3 = 0x165667b19e3779f9n;
const u64 = (n: bigint): bigint => BigInt.asUintN(64, n);

/**
 * The same checksum as {@link checksum}, in plain JavaScript (BigInt): what a
 * Node without WebAssembly uses, and what the WebAssembly is tested against.
 * Slow (milliseconds per 100 KB).
 *
 * @param data - the bytes
 * @returns an unsigned 32-bit integer
 */
export function checksumPortable(data: Uint8Array): number {
  const padded = new Uint8Array(Math.ceil(data.length / 8) * 8);
  padded.set(data);
  const view = new DataView(padded.buffer);
  let h = 0x27d4eb2f165667c5n;
  for (let i = 0; i < padded.length; i += 8) {
    h ^= u64(view.getBigUint64(i, true) * P2);
    h = u64(u64((h << 31n) | (h >> 33n)) * P1);
  }
  h ^= BigInt(data.length);
  h = u64((h ^ (h >> 33n)) * P2);
  h = u64((h ^ (h >> 29n)) * P3);
  return Number(BigInt.asUintN(32, h ^ (h >> 32n)));
}
