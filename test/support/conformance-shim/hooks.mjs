// Resolve hook: the conformance CLI's `fs` import gets fs plus a globSync (used only by its tier report).
const shimUrl = new URL('./fs-with-glob.mjs', import.meta.url).href;

export async function resolve(specifier, context, nextResolve) {
  const fromConformance = context.parentURL?.includes('/@modelcontextprotocol/conformance/');
  if (fromConformance && (specifier === 'fs' || specifier === 'node:fs')) {
    return { url: shimUrl, shortCircuit: true };
  }
  return nextResolve(specifier, context);
}
