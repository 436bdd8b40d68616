/**
 * Process-wide V8 settings the gateway needs on the Node versions it supports.
 *
 * Node 20's V8 (11.3) can abort the process ("Fatal error … unreachable code" in
 * Deoptimizer::DoComputeBuiltinContinuation, a `trap int3`) when optimized code that inlined a
 * JS-to-Wasm call, here the Cedar engine's, is deoptimized lazily. Seen under sustained load
 * (every full `npm run bench` on this machine lost a gateway that way). Calling into Wasm without
 * inlining costs a few nanoseconds per decision; array-builtin inlining, whose lazy deopts go
 * through the same frames, is turned off too. Call once, before serving.
 */
import { setFlagsFromString } from 'node:v8';

export function applyV8Workarounds(): void {
  setFlagsFromString('--no-turbo-inline-js-wasm-calls');
  setFlagsFromString('--no-turbo-inline-array-builtins');
}
