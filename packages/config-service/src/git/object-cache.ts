/**
 * The bounded in-memory caches of `GitRepository`, keyed by object id (what an id names never
 * changes): trees read ({@link TreeCache}, bounded by entries as well as by count, one read
 * per tree however many callers ask at once) and promised answers such as a commit's root
 * tree or the commit a tag peels to ({@link PromiseLru}, which forgets failures and misses).
 */
import { LRUCache } from 'lru-cache';
import { entryType, type RawTreeEntry } from './git-objects.js';
import type { TreeEntry } from './repository-types.js';

/** Most tree entries kept in memory by one repository (about 150 bytes each). */
const TREE_CACHE_MAX_ENTRIES = 100_000;

/** Trees by object id, as maps of entries by name; bounded LRU. Safe under concurrent calls. */
export class TreeCache {
  /** Trees read, by id, bounded by their total number of entries as well as by count. */
  readonly #trees: LRUCache<string, ReadonlyMap<string, TreeEntry>>;
  /** Tree reads in progress, so concurrent cold reads of one tree read it once. */
  readonly #reads = new Map<string, Promise<ReadonlyMap<string, TreeEntry>>>();

  /**
   * @param maxTrees - most trees kept (at least 1 is kept whatever is given); the total of
   *   their entries is also kept under 100,000.
   */
  constructor(maxTrees: number) {
    // A root tree of a few thousand applications is a few hundred KiB once read: the cache
    // is bounded by entries too, so reading many commits does not grow memory with history.
    this.#trees = new LRUCache({ max: Math.max(1, maxTrees), maxSize: TREE_CACHE_MAX_ENTRIES, sizeCalculation: (tree) => tree.size + 1 });
  }

  /**
   * The tree `oid`, from the cache, from a read of it already in progress, or read now.
   *
   * @param oid - tree id (40 hex).
   * @param read - reads the tree's stored entries; called only on a miss with no read of
   *   `oid` in progress.
   * @returns entries by name (frozen {@link TreeEntry} values, kinds from their modes).
   * @throws whatever `read` throws (the failure is not cached: the next call reads again).
   */
  get(oid: string, read: (oid: string) => Promise<readonly RawTreeEntry[]>): Promise<ReadonlyMap<string, TreeEntry>> {
    const hit = this.#trees.get(oid);
    if (hit !== undefined) return Promise.resolve(hit);
    let p = this.#reads.get(oid);
    if (p === undefined) {
      p = read(oid).then((tree) => {
        const map = new Map<string, TreeEntry>();
        for (const e of tree) map.set(e.path, Object.freeze({ name: e.path, oid: e.oid, type: entryType(e.mode) }));
        this.#trees.set(oid, map);
        return map;
      });
      this.#reads.set(oid, p);
      const done = (): void => {
        this.#reads.delete(oid);
      };
      p.then(done, done);
    }
    return p;
  }
}

/**
 * Promised answers by key, in a bounded LRU: concurrent callers of one key share one promise.
 * A promise that rejects, or whose value `keep` refuses, is dropped so the next call asks
 * again (a missing object may arrive with a later fetch).
 */
export class PromiseLru<T> {
  readonly #lru: LRUCache<string, Promise<T>>;
  readonly #keep: (value: T) => boolean;

  /**
   * @param max - most keys kept.
   * @param keep - whether a fulfilled value stays cached; default: every value.
   */
  constructor(max: number, keep: (value: T) => boolean = () => true) {
    this.#lru = new LRUCache({ max });
    this.#keep = keep;
  }

  /**
   * The promise cached for `key`, or `load()`'s, cached now.
   *
   * @param key - the cache key (an object id).
   * @param load - computes the answer; called only when `key` is not cached.
   * @returns the shared promise; it rejects as `load()`'s does.
   */
  get(key: string, load: () => Promise<T>): Promise<T> {
    let p = this.#lru.get(key);
    if (p === undefined) {
      const loaded = load();
      p = loaded;
      this.#lru.set(key, loaded);
      const forget = (): void => {
        if (this.#lru.get(key) === loaded) this.#lru.delete(key);
      };
      loaded.then((value) => {
        if (!this.#keep(value)) forget();
      }, forget);
    }
    return p;
  }
}
