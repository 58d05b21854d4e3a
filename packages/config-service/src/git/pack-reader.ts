/**
 * Reads Git objects from pack files on disk (pack format version 2 with a version 2 index,
 * git `Documentation/gitformat-pack.txt`), for the mirrors config-service keeps.
 *
 * Why not isomorphic-git here: to read one object it loads the whole pack file into
 * memory (so memory grows with the repository's history), keeps every object it resolved
 * deeper than three deltas in an unbounded per-pack map, inflates with pako from the
 * object's offset to the END of the pack, and first tries a loose object (a failing
 * open() and an error per object). This reader keeps only each index's 1 KiB fan-out
 * table; a look-up reads the index's slice for the object's first byte and its offset
 * (positioned reads), the object is read with one positioned read of about its size and
 * inflated by zlib (native), deltas are applied here, and resolved objects are kept in
 * one LRU bounded in bytes. Fetches stay with isomorphic-git.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { inflateSync } from 'node:zlib';
import { LRUCache } from 'lru-cache';

/** The four object types. */
export type GitObjectType = 'commit' | 'tree' | 'blob' | 'tag';

/** An object's type and content (without the `<type> <size>\0` header). */
export interface GitObject {
  readonly type: GitObjectType;
  readonly data: Buffer;
}

const TYPES: ReadonlyArray<GitObjectType | 'ofs_delta' | 'ref_delta' | undefined> = [undefined, 'commit', 'tree', 'blob', 'tag', undefined, 'ofs_delta', 'ref_delta'];
const IDX_MAGIC = 0xff744f63;
const HEADER = 8 + 256 * 4;

/** A pack whose bytes are not what the format says (named in the message). */
export class PackFormatError extends Error {
  readonly code = 'PackFormatError';
}

async function readExactly(fh: FileHandle, length: number, position: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done === length ? buf : buf.subarray(0, done);
}

/**
 * Applies a git delta (`Documentation/gitformat-pack.txt`, "Deltified representation")
 * to `base`.
 * @throws PackFormatError when the delta does not fit its base or its own sizes.
 */
export function applyDelta(base: Buffer, delta: Buffer): Buffer {
  let p = 0;
  const varint = (): number => {
    let value = 0;
    let shift = 0;
    let c: number;
    do {
      c = delta[p++]!;
      value += (c & 0x7f) * 2 ** shift;
      shift += 7;
    } while (c & 0x80 && p < delta.length);
    return value;
  };
  const sourceSize = varint();
  const targetSize = varint();
  if (sourceSize !== base.length) throw new PackFormatError(`delta expects a base of ${sourceSize} bytes, got ${base.length}`);
  // Not from Buffer's shared pool: a cached object must not keep an 8 KiB slab alive.
  const out = Buffer.allocUnsafeSlow(targetSize);
  let o = 0;
  while (p < delta.length) {
    const op = delta[p++]!;
    if (op & 0x80) {
      let offset = 0;
      let length = 0;
      if (op & 0x01) offset |= delta[p++]!;
      if (op & 0x02) offset |= delta[p++]! << 8;
      if (op & 0x04) offset |= delta[p++]! << 16;
      if (op & 0x08) offset = (offset | (delta[p++]! << 24)) >>> 0;
      if (op & 0x10) length |= delta[p++]!;
      if (op & 0x20) length |= delta[p++]! << 8;
      if (op & 0x40) length |= delta[p++]! << 16;
      if (length === 0) length = 0x10000;
      if (offset + length > base.length || o + length > targetSize) throw new PackFormatError('delta copies outside its base or target');
      base.copy(out, o, offset, offset + length);
      o += length;
    } else if (op !== 0) {
      if (o + op > targetSize || p + op > delta.length) throw new PackFormatError('delta inserts past its target');
      delta.copy(out, o, p, p + op);
      o += op;
      p += op;
    } else {
      throw new PackFormatError('delta opcode 0 is reserved');
    }
  }
  if (o !== targetSize) throw new PackFormatError(`delta made ${o} bytes instead of ${targetSize}`);
  return out;
}

/** One pack and its index, opened for positioned reads. */
export class PackFile {
  readonly name: string;
  readonly #idx: FileHandle;
  readonly #pack: FileHandle;
  readonly #fanout: Uint32Array;
  readonly #count: number;
  readonly #packSize: number;

  private constructor(name: string, idx: FileHandle, pack: FileHandle, fanout: Uint32Array, packSize: number) {
    this.name = name;
    this.#idx = idx;
    this.#pack = pack;
    this.#fanout = fanout;
    this.#count = fanout[255] ?? 0;
    this.#packSize = packSize;
  }

  /**
   * Opens `<dir>/<name>` (a `pack-*.idx`) and its `.pack`.
   * @throws PackFormatError for an index that is not version 2; fs errors as they are.
   */
  static async open(dir: string, name: string): Promise<PackFile> {
    const idx = await open(`${dir}/${name}`, 'r');
    let pack: FileHandle | undefined;
    try {
      pack = await open(`${dir}/${name.replace(/\.idx$/, '.pack')}`, 'r');
      const head = await readExactly(idx, HEADER, 0);
      if (head.length < HEADER || head.readUInt32BE(0) !== IDX_MAGIC || head.readUInt32BE(4) !== 2) throw new PackFormatError(`${name} is not a version 2 pack index`);
      const fanout = new Uint32Array(256);
      for (let i = 0; i < 256; i++) fanout[i] = head.readUInt32BE(8 + i * 4);
      const { size } = await pack.stat();
      return new PackFile(name, idx, pack, fanout, size);
    } catch (err) {
      await idx.close().catch(() => undefined);
      await pack?.close().catch(() => undefined);
      throw err;
    }
  }

  /** The offset of `oid` (20 bytes) in the pack, or undefined when the pack does not hold it. */
  async find(oid: Buffer): Promise<number | undefined> {
    const first = oid[0]!;
    const lo = first === 0 ? 0 : this.#fanout[first - 1]!;
    const hi = this.#fanout[first]!;
    if (hi <= lo) return undefined;
    const names = await readExactly(this.#idx, (hi - lo) * 20, HEADER + lo * 20);
    let a = 0;
    let b = hi - lo - 1;
    let found = -1;
    while (a <= b) {
      const m = (a + b) >>> 1;
      const c = names.compare(oid, 0, 20, m * 20, m * 20 + 20);
      if (c === 0) {
        found = m;
        break;
      }
      if (c > 0) b = m - 1;
      else a = m + 1;
    }
    if (found === -1) return undefined;
    const i = lo + found;
    const n = this.#count;
    const small = (await readExactly(this.#idx, 4, HEADER + n * 24 + i * 4)).readUInt32BE(0);
    if ((small & 0x80000000) === 0) return small;
    const large = await readExactly(this.#idx, 8, HEADER + n * 28 + (small & 0x7fffffff) * 8);
    return Number(large.readBigUInt64BE(0));
  }

  /**
   * Reads the entry at `offset`: its type and inflated bytes, or for a delta the delta and
   * where its base is.
   */
  async entry(offset: number): Promise<{ type: GitObjectType; data: Buffer } | { type: 'ofs_delta'; base: number; data: Buffer } | { type: 'ref_delta'; base: Buffer; data: Buffer }> {
    const head = await readExactly(this.#pack, 32, offset);
    let c = head[0]!;
    const type = TYPES[(c >> 4) & 7];
    if (type === undefined) throw new PackFormatError(`${this.name}: unknown object type at offset ${offset}`);
    let size = c & 0x0f;
    let shift = 4;
    let p = 1;
    while (c & 0x80) {
      c = head[p++]!;
      size += (c & 0x7f) * 2 ** shift;
      shift += 7;
    }
    let base: number | Buffer | undefined;
    if (type === 'ofs_delta') {
      c = head[p++]!;
      let rel = c & 0x7f;
      while (c & 0x80) {
        c = head[p++]!;
        rel = (rel + 1) * 128 + (c & 0x7f);
      }
      base = offset - rel;
    } else if (type === 'ref_delta') {
      base = Buffer.from(head.subarray(p, p + 20));
      p += 20;
    }
    const start = offset + p;
    // zlib's worst case is 5 bytes per 16 KiB block plus 6; read a little more, and the
    // rest of the pack if that was still not enough.
    const bound = Math.min(this.#packSize - start, size + (size >>> 10) + 128);
    let inflated: Buffer;
    try {
      inflated = inflateSync(await readExactly(this.#pack, bound, start));
    } catch {
      inflated = inflateSync(await readExactly(this.#pack, this.#packSize - start, start));
    }
    // zlib answers a slice of its 16 KiB output chunk; a cached object keeps only its bytes.
    const data = Buffer.allocUnsafeSlow(inflated.length);
    inflated.copy(data);
    if (data.length !== size) throw new PackFormatError(`${this.name}: object at offset ${offset} inflates to ${data.length} bytes, not ${size}`);
    if (type === 'ofs_delta') return { type, base: base as number, data };
    if (type === 'ref_delta') return { type, base: base as Buffer, data };
    return { type, data };
  }

  async close(): Promise<void> {
    await this.#idx.close().catch(() => undefined);
    await this.#pack.close().catch(() => undefined);
  }
}

/** Most bytes of resolved objects one {@link PackSet} keeps (delta bases mostly). */
const OBJECT_CACHE_BYTES = 16 * 1024 * 1024;

/**
 * The packs of one repository (the ones a mirror's snapshot lists), opened on first use,
 * with one LRU of resolved objects bounded in bytes.
 */
export class PackSet {
  readonly #dir: string;
  readonly #packs = new Map<string, Promise<PackFile>>();
  readonly #objects = new LRUCache<string, GitObject>({ maxSize: OBJECT_CACHE_BYTES, sizeCalculation: (o) => o.data.length + 64 });

  /** @param dir - the `objects/pack` folder */
  constructor(dir: string) {
    this.#dir = dir;
  }

  #pack(name: string): Promise<PackFile> {
    let p = this.#packs.get(name);
    if (p === undefined) {
      p = PackFile.open(this.#dir, name);
      this.#packs.set(name, p);
      p.catch(() => {
        if (this.#packs.get(name) === p) this.#packs.delete(name);
      });
    }
    return p;
  }

  /** Closes the packs not in `keep` (a new snapshot no longer lists them). */
  async retain(keep: ReadonlySet<string>): Promise<void> {
    for (const [name, p] of [...this.#packs]) {
      if (keep.has(name)) continue;
      this.#packs.delete(name);
      await p.then((f) => f.close(), () => undefined);
    }
  }

  /**
   * Reads object `oid` (40 hex) from the packs named in `packs` (`pack-*.idx`).
   * @returns the object, or null when none of them holds it.
   * @throws PackFormatError for damaged pack data.
   */
  async read(oid: string, packs: ReadonlySet<string>, depth = 0): Promise<GitObject | null> {
    const hit = this.#objects.get(oid);
    if (hit !== undefined) return hit;
    if (depth > 64) throw new PackFormatError(`delta chain of ${oid} is longer than 64`);
    const raw = Buffer.from(oid, 'hex');
    for (const name of packs) {
      const pack = await this.#pack(name);
      const offset = await pack.find(raw);
      if (offset === undefined) continue;
      const object = await this.#resolve(pack, offset, packs, depth);
      this.#objects.set(oid, object);
      return object;
    }
    return null;
  }

  /** Whether one of `packs` holds `oid`, without reading it. */
  async has(oid: string, packs: ReadonlySet<string>): Promise<boolean> {
    if (this.#objects.has(oid)) return true;
    const raw = Buffer.from(oid, 'hex');
    for (const name of packs) if ((await (await this.#pack(name)).find(raw)) !== undefined) return true;
    return false;
  }

  async #resolve(pack: PackFile, offset: number, packs: ReadonlySet<string>, depth: number): Promise<GitObject> {
    const key = `${pack.name}@${offset}`;
    const hit = this.#objects.get(key);
    if (hit !== undefined) return hit;
    const e = await pack.entry(offset);
    let object: GitObject;
    if (e.type === 'ofs_delta') {
      const base = await this.#resolve(pack, e.base, packs, depth + 1);
      object = { type: base.type, data: applyDelta(base.data, e.data) };
      // A base read through a delta is likely a base again: keep it under its offset.
      this.#objects.set(`${pack.name}@${e.base}`, base);
    } else if (e.type === 'ref_delta') {
      const baseOid = e.base.toString('hex');
      const base = await this.read(baseOid, packs, depth + 1);
      if (base === null) throw new PackFormatError(`${pack.name}: delta base ${baseOid} is missing`);
      object = { type: base.type, data: applyDelta(base.data, e.data) };
    } else {
      object = { type: e.type, data: e.data };
    }
    return object;
  }

  /** Closes every pack. */
  async close(): Promise<void> {
    await this.retain(new Set());
    this.#objects.clear();
  }
}
