/**
 * Raw files (SPEC §2, §5.1): `GET /v1/apps/{app}/files` lists an application's raw files
 * and `GET /v1/apps/{app}/files/{path}` serves one file's bytes as they are in Git.
 *
 * Files live in `<app>/files/**`, overlaid by `<app>/files-<profile>/**` for each profile
 * asked for (a later profile wins by path). Symlinks, submodules and Git LFS pointer files
 * are never followed or served (SPEC §2.3): the git layer throws CFG_ERR_UNSUPPORTED_ENTRY
 * (422) for them.
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { CFG_ERR_FILE_NOT_FOUND, CFG_ERR_INVALID_PATH, CFG_ERR_UNSUPPORTED_ENTRY } from '../../errors.js';
import { readTarget } from '../target.js';
import { answerOrWait, parseWait, WAIT_PATTERN } from '../long-poll.js';

const ListParams = Type.Object({ app: Type.String() });
const FileParams = Type.Object({ app: Type.String(), '*': Type.String() });
const FilesQuery = Type.Object(
  {
    profile: Type.Optional(Type.String({ maxLength: 1024 })),
    ref: Type.Optional(Type.String({ maxLength: 1024 })),
    /** Long-poll (with `If-None-Match`): hold the answer until it changes, at most this long. */
    wait: Type.Optional(Type.String({ pattern: WAIT_PATTERN })),
  },
  { additionalProperties: false },
);

/** One entry of the file list. */
export interface FileListEntry {
  /** Path inside the files folder, `/`-separated (`conf/logback.xml`). */
  path: string;
  /** Size in bytes. */
  size: number;
  /** SHA-256 of the bytes, lower-case hex. */
  sha256: string;
}

/** Body of `GET /v1/apps/{app}/files`. */
export interface FileList {
  /** The commit the list was read at. */
  commit: string;
  /** Files sorted by path (UTF-16 code units). */
  files: FileListEntry[];
}

/** Longest raw-file path accepted, in characters (the router's parameter limit is 1024 too). */
export const MAX_FILE_PATH = 1024;

/**
 * Validates the `{path}` of `GET /v1/apps/{app}/files/{path}`, which the router decoded
 * exactly once, and splits it into segments. Nothing here is decoded again, so `%252F`
 * stays the three characters `%2F` inside one segment.
 *
 * Refused (400 `invalid_path`): an empty path, a path longer than {@link MAX_FILE_PATH},
 * a control character (NUL included), a backslash, and any empty, `.` or `..` segment (a
 * leading, trailing or doubled `/` makes an empty segment). The segments are joined below
 * the application's files folders only, so no path can name anything outside them.
 *
 * @returns the segments (`['conf', 'logback.xml']`).
 * @throws CFG_ERR_INVALID_PATH (400) naming the rule broken, never the path.
 */
export function parseFilePath(raw: string): string[] {
  if (raw === '') throw new CFG_ERR_INVALID_PATH('is empty');
  if (raw.length > MAX_FILE_PATH) throw new CFG_ERR_INVALID_PATH(`is longer than ${MAX_FILE_PATH} characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(raw)) throw new CFG_ERR_INVALID_PATH('contains a control character');
  if (raw.includes('\\')) throw new CFG_ERR_INVALID_PATH('contains a backslash');
  const segments = raw.split('/');
  for (const s of segments) {
    if (s === '') throw new CFG_ERR_INVALID_PATH("has an empty segment (leading, trailing or doubled '/')");
    if (s === '.' || s === '..') throw new CFG_ERR_INVALID_PATH("has a '.' or '..' segment");
  }
  return segments;
}

/** Media types by file extension (lower case); everything else is `application/octet-stream`. */
export const FILE_MEDIA_TYPES: Readonly<Record<string, string>> = {
  xml: 'application/xml',
  json: 'application/json',
  yml: 'application/yaml',
  yaml: 'application/yaml',
  properties: 'text/x-java-properties',
  txt: 'text/plain',
  conf: 'text/plain',
  csv: 'text/csv',
  pem: 'application/x-pem-file',
  crt: 'application/x-x509-ca-cert',
  sh: 'text/x-shellscript',
  toml: 'application/toml',
};

/** The media type of a file name by its extension (SPEC §5.1 raw bytes). */
export function fileMediaType(name: string): string {
  const dot = name.lastIndexOf('.');
  if (dot <= 0) return 'application/octet-stream';
  return FILE_MEDIA_TYPES[name.slice(dot + 1).toLowerCase()] ?? 'application/octet-stream';
}

/** Options of the files routes. */
export interface FilesRoutesOptions {
  /** Sizes and hashes of blobs kept in memory, by blob id (a blob never changes). */
  cacheEntries: number;
}

/** Registers the raw-file routes. */
export default async function filesRoutes(app: FastifyInstance, opts: FilesRoutesOptions): Promise<void> {
  const digests = new LRUCache<string, { size: number; sha256: string }>({ max: Math.max(1, opts.cacheEntries) });

  app.get<{ Params: Static<typeof ListParams>; Querystring: Static<typeof FilesQuery> }>(
    '/v1/apps/:app/files',
    { schema: { params: ListParams, querystring: FilesQuery } },
    async (request, reply) => {
      const target = await readTarget(request, {
        action: 'files.list',
        format: 'json',
        app: request.params.app,
        profile: request.query.profile,
        ref: request.query.ref,
      });
      const { app: appName, profiles, store } = target;
      // Weak: two commits with the same files give equivalent lists (only `commit` differs).
      const etagAt = async (commit: string): Promise<string> =>
        `W/"${createHash('sha256').update(['files', store.name, appName, profiles.join(','), await store.reader.dependencyKey(commit, appName, profiles, { documents: false, overlays: ['files'] })].join('\0')).digest('base64url').slice(0, 32)}"`;
      const produce = async (commit: string): Promise<{ etag: string; files: FileListEntry[] }> => {
        const entries = await store.reader.listRawFiles(commit, appName, profiles);
        const files: FileListEntry[] = [];
        for (const e of entries) {
          let d = digests.get(e.oid);
          if (!d) {
            // Throws CFG_ERR_UNSUPPORTED_ENTRY (422) for symlinks, submodules, LFS pointers.
            const file = await store.repository.readFileAt(commit, e.source);
            if (!file) throw new CFG_ERR_UNSUPPORTED_ENTRY(`${JSON.stringify(e.source)} cannot be read as a file`);
            d = { size: file.bytes.byteLength, sha256: createHash('sha256').update(file.bytes).digest('hex') };
            digests.set(e.oid, d);
          } else if (e.type !== 'blob') {
            throw new CFG_ERR_UNSUPPORTED_ENTRY(`${JSON.stringify(e.source)} is not a regular file`);
          }
          files.push({ path: e.path, size: d.size, sha256: d.sha256 });
        }
        return { etag: await etagAt(commit), files };
      };
      const { result, commit, notModified } = await answerOrWait(request, reply, target, {
        waitMs: parseWait(request.query.wait, app.longPoll.options.maxWaitMs),
        group: `files\0${store.name}\0${appName}\0${profiles.join(',')}`,
        produce,
        etagAt,
      });
      reply.header('config-commit', commit).header('cache-control', 'no-store').header('etag', result.etag);
      if (notModified) return reply.code(304).send();
      const body: FileList = { commit, files: result.files };
      return reply.type('application/json; charset=utf-8').send(JSON.stringify(body));
    },
  );

  app.get<{ Params: Static<typeof FileParams>; Querystring: Static<typeof FilesQuery> }>(
    '/v1/apps/:app/files/*',
    { schema: { params: FileParams, querystring: FilesQuery } },
    async (request, reply) => {
      let segments: string[] = [];
      const target = await readTarget(
        request,
        { action: 'files.read', format: 'raw', app: request.params.app, profile: request.query.profile, ref: request.query.ref },
        () => (segments = parseFilePath(request.params['*'])),
      );
      const { app: appName, profiles, store } = target;
      // The ETag is the winning blob's id: it follows the content, whatever the commit.
      const produce = async (at: string): Promise<{ etag: string; file: { oid: string; bytes: Uint8Array } }> => {
        const file = await store.reader.readRawFile(at, appName, profiles, segments);
        if (!file) throw new CFG_ERR_FILE_NOT_FOUND(appName);
        return { etag: `"${file.oid}"`, file };
      };
      const { result, commit: served, notModified } = await answerOrWait(request, reply, target, {
        waitMs: parseWait(request.query.wait, app.longPoll.options.maxWaitMs),
        group: `file\0${store.name}\0${appName}\0${profiles.join(',')}\0${segments.join('/')}`,
        produce,
        etagAt: async (at) => `"${(await store.reader.rawFileOid(at, appName, profiles, segments)) ?? 'none'}"`,
      });
      reply.header('config-commit', served).header('etag', result.etag).header('cache-control', 'no-store');
      if (notModified) return reply.code(304).send();
      const bytes = result.file.bytes;
      return reply.type(fileMediaType(segments[segments.length - 1] as string)).send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    },
  );
}
