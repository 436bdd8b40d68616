/** MCP protocol revisions Warden serves. */

export const SESSIONFUL_REVISIONS = ['2025-03-26', '2025-06-18', '2025-11-25'] as const;
export const STATELESS_REVISION = '2026-07-28';
export const SUPPORTED_REVISIONS: readonly string[] = [...SESSIONFUL_REVISIONS, STATELESS_REVISION];

/** The revision assumed when a sessionful client sends no MCP-Protocol-Version header. */
export const DEFAULT_SESSIONFUL_REVISION = '2025-03-26';

/**
 * Every request method revision 2026-07-28 has. Those it removed (initialize, ping,
 * logging/setLevel, resources/subscribe and unsubscribe) and unknown ones are not part of it.
 */
export const STATELESS_REQUEST_METHODS: ReadonlySet<string> = new Set([
  'server/discover',
  'subscriptions/listen',
  'tools/list',
  'tools/call',
  'prompts/list',
  'prompts/get',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'completion/complete',
]);

export function isSupportedRevision(version: string): boolean {
  return SUPPORTED_REVISIONS.includes(version);
}
