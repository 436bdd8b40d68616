/**
 * Process-wide V8 settings the gateway needs on the Node versions it supports.
 *
 * Node 20's V8 can abort the process ("Fatal error … unreachable code" in
 * Deoptimizer::DoComputeBuiltinContinuation, a `trap int3`) when optimized code with an inlined
 * array builtin is deoptimized lazily under load. Seen here under sustained load (3 crashes in 5
 * runs of a loaded gateway; 0 in 4 with this flag). Not inlining array builtins costs little and
 * removes the frames that crash. Call once, before serving.
 */
import { setFlagsFromString } from 'node:v8';

export function applyV8Workarounds(): void {
  setFlagsFromString('--no-turbo-inline-array-builtins');
}
