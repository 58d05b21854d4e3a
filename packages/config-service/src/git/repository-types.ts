/**
 * The shapes `GitRepository` (repository.ts) returns: tree entries, listed files, commits of
 * a first-parent walk and resolved refs.
 */

/** Kind of a tree entry, from its Git mode: 040000 tree, 120000 symlink, 160000 submodule, else blob. */
export type TreeEntryType = 'blob' | 'tree' | 'symlink' | 'submodule';

/** One entry of a Git tree. */
export interface TreeEntry {
  /** File or directory name (one path component, no `/`). */
  readonly name: string;
  /** Object id (40 hex) of the blob, tree, or — for a submodule — the commit it pins. */
  readonly oid: string;
  /** Kind of entry. */
  readonly type: TreeEntryType;
}

/** A file found by `GitRepository.listFiles`. */
export interface ListedFile {
  /** Path from the repository root, `/`-separated, no leading slash. */
  readonly path: string;
  /** Object id (40 hex). */
  readonly oid: string;
  /** Kind of entry; never `'tree'` (trees are descended into). */
  readonly type: Exclude<TreeEntryType, 'tree'>;
}

/** One commit of `GitRepository.walkFirstParent`. */
export interface FirstParentEntry {
  /** Commit id (40 hex). */
  readonly commit: string;
  /** First parent's id, or `null` for a root commit. */
  readonly parent: string | null;
  /** Committer time, seconds since the epoch (UTC). */
  readonly committerTime: number;
  /** Author name (the e-mail is personal data and is not returned). */
  readonly authorName: string;
  /** Full commit message. */
  readonly message: string;
}

/** Result of `GitRepository.resolveRef`. */
export interface ResolvedRef {
  /** Commit id (40 lower-case hex). For an annotated tag this is the commit, not the tag object. */
  readonly commit: string;
  /**
   * What matched: `refs/heads/<branch>` (also for mirrors, whose branches are stored under
   * `refs/remotes/<remote>/`), `refs/tags/<tag>`, the full ref name given, or the commit id.
   */
  readonly ref: string;
}
