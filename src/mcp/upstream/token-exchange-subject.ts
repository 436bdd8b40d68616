/**
 * The subject token of a token exchange: a short-lived JWT Warden signs with its built-in
 * issuer's keys, naming the caller — the person, or the agent when there is none — and the app
 * or agent acting (`client_id`, `act`). It never carries the client's own token. Its `aud` is the
 * upstream's authorization server, so Warden's own verifier refuses it as an access token.
 */
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import type { ActiveSigningKey } from '../../identity/signing-keys.js';
import type { UpstreamCaller } from './types.js';

/** Signs subject tokens: the built-in issuer's identifier and its active key. */
export interface SubjectTokenSigner {
  /** The `iss` of the subject token; its keys are published at `<issuer>/.well-known/jwks.json`. */
  readonly issuer: string;
  currentKey(): Promise<ActiveSigningKey>;
}

/** The claim naming the registered agent, as in the built-in issuer's own tokens. */
const AGENT_CLAIM = 'warden_agent';

export async function signSubjectToken(
  signer: SubjectTokenSigner,
  caller: UpstreamCaller,
  options: { readonly audience: string; readonly ttlMs: number; readonly now: number },
): Promise<string> {
  // The actors, outermost first: the app or agent the caller's token named, else the agent.
  const actors = caller.delegation.length > 0 ? caller.delegation : [caller.agent];
  const claims: Record<string, unknown> = {
    client_id: actors[0],
    [AGENT_CLAIM]: caller.agent,
  };
  if (caller.user !== undefined) claims['act'] = nestActors(actors);
  const key = await signer.currentKey();
  const issuedAt = Math.floor(options.now / 1000);
  return (
    new SignJWT(claims)
      // Not at+jwt: this is an assertion for the authorization server, not an access token.
      .setProtectedHeader({ alg: key.algorithm, kid: key.kid, typ: 'JWT' })
      .setIssuer(signer.issuer)
      .setSubject(caller.user ?? caller.agent)
      .setAudience(options.audience)
      .setIssuedAt(issuedAt)
      .setExpirationTime(issuedAt + Math.max(1, Math.floor(options.ttlMs / 1000)))
      .setJti(randomBytes(16).toString('base64url'))
      .sign(key.privateKey)
  );
}

/** RFC 8693 §4.1: the current actor at the top, earlier actors nested inside. */
function nestActors(actors: readonly string[]): Record<string, unknown> {
  let act: Record<string, unknown> | undefined;
  for (const actor of [...actors].reverse()) act = act ? { sub: actor, act } : { sub: actor };
  return act ?? {};
}
