/**
 * Keeping Git credentials out of URLs, logs, errors and HTTP answers (SPEC §4, case 15),
 * and reading them anew for every fetch.
 */
import { readFileSync } from 'node:fs';

/** A remote URL with the credentials it embedded taken out. */
export interface SplitUrl {
  /** The URL without userinfo (`https://host/path.git`); safe to log and to pass to isomorphic-git. */
  readonly url: string;
  /** User name from the userinfo, percent-decoded; absent when none. */
  readonly username?: string;
  /** Password or token from the userinfo, percent-decoded; absent when none. */
  readonly password?: string;
}

const USERINFO = /^([a-zA-Z][a-zA-Z0-9+.-]*:\/\/)([^/?#]*)@/;

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * Splits the credentials embedded in a URL (`https://user:pass@host/...`) from it.
 *
 * The URL is cut as a string (not re-serialised), so nothing else in it changes. Userinfo
 * is split at its first `:`; both halves are percent-decoded (`p%40ss%2Fw0rd` → `p@ss/w0rd`).
 *
 * @param url - the configured remote URL, possibly with userinfo.
 * @returns the URL without userinfo, and the decoded user name and password when present.
 */
export function splitCredentials(url: string): SplitUrl {
  const m = USERINFO.exec(url);
  if (m === null) return { url };
  const scheme = m[1] as string;
  const userinfo = m[2] as string;
  const rest = url.slice(m[0].length);
  const colon = userinfo.indexOf(':');
  const rawUser = colon === -1 ? userinfo : userinfo.slice(0, colon);
  const out: { url: string; username?: string; password?: string } = { url: scheme + rest };
  if (rawUser !== '') out.username = decode(rawUser);
  if (colon !== -1) out.password = decode(userinfo.slice(colon + 1));
  return out;
}

/**
 * Every form in which a secret may show up in text: itself, percent-encoded (upper- and
 * lower-case hex, `encodeURIComponent` and `encodeURI` styles, `+` for spaces) and base64.
 */
function variants(secret: string): string[] {
  const enc = encodeURIComponent(secret);
  const encLower = enc.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase());
  const b64 = Buffer.from(secret, 'utf8').toString('base64');
  return [secret, enc, encLower, encodeURI(secret), enc.replace(/%20/g, '+'), b64, b64.replace(/=+$/, '')];
}

/**
 * Removes secrets from a text before it reaches a log line, an error message or an HTTP answer.
 *
 * Replaces with `***`: any URL userinfo (`scheme://user:pass@` → `scheme://***@`), and each
 * secret in every form listed above (plain, URL-encoded, base64). Pass base64(`user:password`)
 * — or simply the `user:password` pair — among the secrets to cover Basic authorization
 * headers (the pair is base64-encoded here too).
 *
 * @param text - any text (an isomorphic-git error message, a URL…).
 * @param secrets - passwords, tokens, `user:password` pairs; empty strings are ignored.
 * @returns the text with every occurrence replaced by `***`.
 */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  let out = text.replace(/([a-zA-Z][a-zA-Z0-9+.-]*:\/\/)[^\s/?#]*@/g, '$1***@');
  const all = new Set<string>();
  for (const s of secrets) {
    if (s === '') continue;
    for (const v of variants(s)) if (v !== '') all.add(v);
  }
  // Longest first, so a secret containing another is replaced whole.
  for (const v of [...all].sort((a, b) => b.length - a.length)) {
    out = out.split(v).join('***');
  }
  return out;
}

/** Where {@link GitCredentials} takes the user name and password from. */
export interface GitCredentialsOptions {
  /** User name (from `auth.username` or the URL). */
  readonly username?: string | undefined;
  /** A fixed password or token (from `auth.passwordEnv` or the URL). */
  readonly password?: string | undefined;
  /** A file holding the password or token (`auth.passwordFile`), re-read on every {@link GitCredentials.read}. */
  readonly passwordFile?: string | undefined;
}

/** How many secrets {@link GitCredentials.secrets} remembers (old ones keep being redacted). */
const REMEMBERED_SECRETS = 8;

/**
 * The credentials of one remote, re-read from `passwordFile` on every fetch (SPEC §4:
 * "credential files are re-read on every fetch (rotation without restart)"). The path is
 * opened anew each time, so a Kubernetes Secret volume's atomic `..data` symlink swap is
 * seen at the next fetch. One trailing newline is dropped.
 */
export class GitCredentials {
  readonly #username: string | undefined;
  readonly #password: string | undefined;
  readonly #file: string | undefined;
  readonly #seen: string[] = [];

  constructor(options: GitCredentialsOptions) {
    this.#username = options.username;
    this.#password = options.password;
    this.#file = options.passwordFile;
    this.#remember(this.#username, this.#password);
  }

  /** Whether any credential is configured. */
  get configured(): boolean {
    return this.#username !== undefined || this.#password !== undefined || this.#file !== undefined;
  }

  /**
   * The user name and password to send now.
   * @throws Error with code `GIT_CREDENTIALS_UNREADABLE` when `passwordFile` cannot be read
   *   (the message names the errno code, never the content).
   */
  read(): { username?: string; password?: string } {
    let password = this.#password;
    if (this.#file !== undefined) {
      try {
        password = readFileSync(this.#file, 'utf8').replace(/\r?\n$/, '');
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? 'error';
        throw Object.assign(new Error(`auth.passwordFile cannot be read (${code})`), { code: 'GIT_CREDENTIALS_UNREADABLE' });
      }
    }
    this.#remember(this.#username, password);
    return { ...(this.#username !== undefined && { username: this.#username }), ...(password !== undefined && { password }) };
  }

  /** Every secret form to redact: the passwords read so far (the last few) and their Basic pairs. */
  secrets(): readonly string[] {
    return this.#seen;
  }

  #remember(username: string | undefined, password: string | undefined): void {
    const add: string[] = [];
    if (password !== undefined && password !== '') add.push(password, `${username ?? ''}:${password}`);
    else if (username !== undefined && username !== '') add.push(username, `${username}:`); // a token given as the user name
    for (const s of add) {
      if (this.#seen.includes(s)) continue;
      this.#seen.push(s);
      if (this.#seen.length > REMEMBERED_SECRETS * 2) this.#seen.splice(0, 2);
    }
  }
}
