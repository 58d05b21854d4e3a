/**
 * The state a mirror publishes after each successful sync ({@link RefSnapshot}: its refs and
 * the packs reads may use) and the comparison that tells whether a new snapshot moved a ref.
 */

/**
 * Refs and packs a mirror publishes after a successful sync; reads see exactly this state.
 */
export interface RefSnapshot {
  /** Full ref name (`refs/remotes/origin/main`, `refs/tags/v1`) → object id (40 hex, tags unpeeled). */
  readonly refs: ReadonlyMap<string, string>;
  /** File names (`pack-<sha>.idx`) of the pack indexes reads may use. */
  readonly packs: ReadonlySet<string>;
}

/**
 * Whether two published snapshots name the same refs; the packs they list are not compared.
 *
 * @param a - a snapshot, or `null` (refs read from disk).
 * @param b - a snapshot, or `null`.
 * @returns true when both hold the same ref names with the same object ids, or both are `null`.
 */
export function sameRefs(a: RefSnapshot | null, b: RefSnapshot | null): boolean {
  if (a === null || b === null) return a === b;
  if (a.refs.size !== b.refs.size) return false;
  for (const [ref, oid] of a.refs) if (b.refs.get(ref) !== oid) return false;
  return true;
}
