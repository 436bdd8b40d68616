/**
 * "Did you mean …" for a misspelt name in warden.yaml: the allowed name closest to what was
 * written, when it is close enough to be the obvious intent.
 */

/** Typos this far apart (insertions, deletions, substitutions, swaps) still count as close. */
const MAX_DISTANCE = 2;

/**
 * The candidate `written` most plausibly meant: one a couple of keystrokes away (an edit of at
 * most two, or one for names of three letters or fewer), or else the one name that starts with
 * what was written or is its start (`max_body_bytes` for `max_body`, `warn` for `warning`).
 * Undefined when none is, or two are equally close.
 */
export function findClosestName(written: string, candidates: Iterable<string>): string | undefined {
  const names = [...candidates];
  const allowed = written.length <= 3 ? 1 : MAX_DISTANCE;
  let best: { name: string; distance: number } | undefined;
  let tied = false;
  for (const candidate of names) {
    if (candidate === written) return candidate;
    const distance = editDistance(written.toLowerCase(), candidate.toLowerCase());
    if (distance > allowed) continue;
    if (best === undefined || distance < best.distance) {
      best = { name: candidate, distance };
      tied = false;
    } else if (distance === best.distance) {
      tied = true;
    }
  }
  if (best !== undefined) return tied ? undefined : best.name;
  // One is the start of the other: a key cut short (`max_body`), or an option spelt out (`warning`).
  const prefixed = names.filter(
    (candidate) =>
      Math.min(candidate.length, written.length) >= 3 &&
      (candidate.startsWith(written) || written.startsWith(candidate)),
  );
  return prefixed.length === 1 ? prefixed[0] : undefined;
}

/** `; did you mean "finance"?` or nothing, to append to a message about `written`. */
export function suggestName(written: string, candidates: Iterable<string>): string {
  const closest = findClosestName(written, candidates);
  return closest === undefined ? '' : `; did you mean "${closest}"?`;
}

/** Optimal string alignment distance: Levenshtein plus the swap of two neighbours. */
function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row: number[] = [i];
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        row.push(j);
        continue;
      }
      const above = rows[i - 1] as number[];
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let distance = Math.min(
        (above[j] as number) + 1,
        (row[j - 1] as number) + 1,
        (above[j - 1] as number) + cost,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        distance = Math.min(distance, ((rows[i - 2] as number[])[j - 2] as number) + 1);
      }
      row.push(distance);
    }
    rows.push(row);
  }
  return (rows[a.length] as number[])[b.length] as number;
}
