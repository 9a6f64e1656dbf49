// "Did you mean ...?" for a misspelled option: the edit distance between two names (insertions,
// deletions, substitutions and swaps of two neighbours, ignoring case) and the nearest of a list.

/** Optimal string alignment distance, case-insensitive: `quietWindow` to `quietWindowMs` is 2. */
export function editDistance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  // three rows are enough: the current one, the one above it and the one above that (for swaps)
  let before = new Array<number>(t.length + 1).fill(0);
  let above = Array.from({ length: t.length + 1 }, (_, j) => j);
  for (let i = 1; i <= s.length; i++) {
    const row = [i];
    for (let j = 1; j <= t.length; j++) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1;
      let best = Math.min((above[j] as number) + 1, (row[j - 1] as number) + 1, (above[j - 1] as number) + cost);
      if (i > 1 && j > 1 && s[i - 1] === t[j - 2] && s[i - 2] === t[j - 1])
        best = Math.min(best, (before[j - 2] as number) + 1);
      row.push(best);
    }
    before = above;
    above = row;
  }
  return above[t.length] as number;
}

/**
 * The candidate nearest to `name`, or undefined when none is near enough to be a plausible typo
 * (at most 40 % of the longer name's letters changed, and never more than 4).
 */
export function closest(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const distance = editDistance(name, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  if (best === undefined) return undefined;
  const allowed = Math.min(4, Math.max(1, Math.round(Math.max(name.length, best.length) * 0.4)));
  return bestDistance <= allowed ? best : undefined;
}
