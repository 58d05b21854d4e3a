/**
 * HTTPS requests with client certificates (undici Agent with `connect: { ca, cert, key }`).
 */
import { Agent } from 'undici';

export interface HttpsResult {
  status: number;
  headers: Record<string, string>;
  body: string;
  json<T = unknown>(): T;
}

export interface HttpsOptions {
  ca: string;
  cert?: string;
  key?: string;
  headers?: Record<string, string>;
  method?: 'GET' | 'POST';
  /** Request body (for POST); set `content-type` in `headers`. */
  body?: string | Uint8Array;
}

/** Requests `rawPath` on `base` (the path is sent as written, no normalisation) and reads the whole body. */
export async function httpsGet(base: string, rawPath: string, opts: HttpsOptions): Promise<HttpsResult> {
  const agent = new Agent({ connect: { ca: opts.ca, ...(opts.cert && { cert: opts.cert }), ...(opts.key && { key: opts.key }), servername: 'localhost' } });
  try {
    // Dispatcher.request sends `path` as written (undici's top-level request() would parse it as a URL).
    const res = await agent.request({ origin: base, path: rawPath, method: opts.method ?? 'GET', headers: opts.headers ?? {}, ...(opts.body !== undefined && { body: opts.body }) });
    const body = await res.body.text();
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : String(v);
    return { status: res.statusCode, headers, body, json: <T>() => JSON.parse(body) as T };
  } finally {
    await agent.close();
  }
}
