/**
 * The WWW-Authenticate challenge for refused requests, as the MCP authorization spec and
 * RFC 6750 / RFC 9728 prescribe: where the resource metadata is, and what went wrong.
 */
export interface Challenge {
  readonly resourceMetadataUrl: string;
  readonly error?: 'invalid_token' | 'insufficient_scope' | 'invalid_request';
  readonly description?: string;
  readonly scope?: readonly string[];
}

export function formatChallenge(challenge: Challenge): string {
  const parts = [`resource_metadata="${quote(challenge.resourceMetadataUrl)}"`];
  if (challenge.error !== undefined) parts.push(`error="${challenge.error}"`);
  if (challenge.description !== undefined)
    parts.push(`error_description="${quote(challenge.description)}"`);
  if (challenge.scope !== undefined && challenge.scope.length > 0) {
    parts.push(`scope="${quote(challenge.scope.join(' '))}"`);
  }
  return `Bearer ${parts.join(', ')}`;
}

/** Header parameter values may not carry quotes, backslashes or control characters. */
function quote(value: string): string {
  return [...value].filter((char) => char !== '"' && char !== '\\' && isPrintable(char)).join('');
}

function isPrintable(char: string): boolean {
  const code = char.charCodeAt(0);
  return code >= 0x20 && code !== 0x7f;
}
