/**
 * A tiny stderr logger: human text or JSON lines. It is handed only names, counts, commit
 * ids and hashes; callers never pass configuration values or key material.
 */
import { open, type FileHandle } from 'node:fs/promises';
import type { LogFormat } from './args.js';

/** Where log lines go (stderr in the CLI; a buffer in tests). */
export interface LogSink {
  /** Writes one chunk of text. */
  write(chunk: string): unknown;
}

/** Log level. */
export type Level = 'info' | 'warn' | 'error';

/** Structured fields of a log line. Only identifiers and hashes, never values. */
export interface LogFields {
  /** Application name. */
  app?: string;
  /** Commit the configuration was read at. */
  commit?: string;
  /** Published file name → SHA-256 hex. */
  files?: Record<string, string>;
  /** Error code of a failure. */
  code?: string;
  /** Any other identifier-like detail (attempt number, status, delay, path, ...). */
  [key: string]: string | number | boolean | Record<string, string> | readonly string[] | undefined;
}

/** A logger bound to one sink and style. */
export interface Logger {
  /** Logs at info level. */
  info(msg: string, fields?: LogFields): void;
  /** Logs at warn level. */
  warn(msg: string, fields?: LogFields): void;
  /** Logs at error level. */
  error(msg: string, fields?: LogFields): void;
}

function textValue(v: unknown): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) || v === '' ? JSON.stringify(v) : v;
  if (Array.isArray(v)) return v.join(',');
  if (v !== null && typeof v === 'object') {
    return Object.entries(v as Record<string, unknown>)
      .map(([k, x]) => `${k}:${String(x).slice(0, 12)}`)
      .join(',');
  }
  return String(v);
}

/**
 * Creates a logger.
 *
 * @param sink - where lines are written.
 * @param format - `text` (`time level msg k=v ...`) or `json` (one object per line:
 *   `{ level, time, msg, app, commit, files, ... }`).
 * @param now - clock, for tests.
 */
export function createLogger(sink: LogSink, format: LogFormat, now: () => number = Date.now): Logger {
  const line = (level: Level, msg: string, fields: LogFields = {}): void => {
    const time = new Date(now()).toISOString();
    if (format === 'json') {
      const obj: Record<string, unknown> = { level, time, msg };
      for (const [k, v] of Object.entries(fields)) if (v !== undefined) obj[k] = v;
      sink.write(`${JSON.stringify(obj)}\n`);
      return;
    }
    const kv = Object.entries(fields)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${textValue(v)}`)
      .join(' ');
    sink.write(`${time} ${level.toUpperCase().padEnd(5)} config-init: ${msg}${kv ? ` ${kv}` : ''}\n`);
  };
  return {
    info: (msg, fields) => line('info', msg, fields),
    warn: (msg, fields) => line('warn', msg, fields),
    error: (msg, fields) => line('error', msg, fields),
  };
}

/** Kubernetes reads at most 4096 bytes of a termination message. */
const TERMINATION_LOG_MAX = 4096;

/**
 * Writes `message` to the termination log at `path` only when that file already exists
 * (the kubelet creates `/dev/termination-log`; `kubectl describe pod` shows it). Opening
 * with `r+` never creates the file. Failures are ignored: the log is a courtesy.
 *
 * @returns whether the message was written.
 */
export async function writeTerminationLog(path: string, message: string): Promise<boolean> {
  if (path === '') return false;
  let fh: FileHandle;
  try {
    fh = await open(path, 'r+');
  } catch {
    return false;
  }
  try {
    let bytes = Buffer.from(`${message}\n`, 'utf8');
    if (bytes.length > TERMINATION_LOG_MAX) bytes = bytes.subarray(0, TERMINATION_LOG_MAX);
    await fh.truncate(0).catch(() => undefined);
    await fh.write(bytes, 0, bytes.length, 0);
    return true;
  } catch {
    return false;
  } finally {
    await fh.close().catch(() => undefined);
  }
}
