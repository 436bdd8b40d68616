/**
 * Which built-in user ids may be configured and presented. No id starts or ends with white space
 * or holds control, format (zero-width, bidi) or unassigned characters, and no two configured ids
 * look alike (NFKC and case folded): such ids read as one person in logs and on the consent page.
 * Kept in config so the loader reports them; the user directory applies the same rules.
 */
const MAX_USER_ID_LENGTH = 256;

export function isAcceptableUserId(id: string): boolean {
  return id.length > 0 && id.length <= MAX_USER_ID_LENGTH && id.trim() === id && !/\p{C}/u.test(id);
}

export interface UserIdProblem {
  readonly kind: 'not_accepted' | 'confusable';
  readonly message: string;
}

/** The first problem among configured ids (compared after NFC), if any. */
export function findUserIdProblem(ids: Iterable<string>): UserIdProblem | undefined {
  const byLookAlike = new Map<string, string>();
  for (const configured of ids) {
    const id = configured.normalize('NFC');
    if (!isAcceptableUserId(id))
      return {
        kind: 'not_accepted',
        message: `auth.login.users: ${JSON.stringify(configured)} starts or ends with white space or holds control or invisible characters`,
      };
    const lookAlike = id.normalize('NFKC').toLowerCase();
    const other = byLookAlike.get(lookAlike);
    if (other !== undefined)
      return {
        kind: 'confusable',
        message: `auth.login.users: "${other}" and "${configured}" look alike; give them distinct ids`,
      };
    byLookAlike.set(lookAlike, configured);
  }
  return undefined;
}
