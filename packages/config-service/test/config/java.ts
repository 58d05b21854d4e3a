/**
 * Runs the Java fixture `fixtures/PropsReader.java` (single-file source launch, Java 11+)
 * to read `.properties` files exactly as `java.util.Properties.load` does.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const READER = fileURLToPath(new URL('./fixtures/PropsReader.java', import.meta.url));

/** What Java read from one file, from its bytes and through a UTF-8 reader. */
export interface JavaRead {
  readonly bytes: Record<string, string>;
  readonly utf8: Record<string, string>;
}

/** True when a `java` launcher is available. */
export function hasJava(): boolean {
  try {
    execFileSync('java', ['-version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Loads every given file content with java.util.Properties (one JVM start for all). */
export function javaLoad(contents: ReadonlyArray<string | Uint8Array>): JavaRead[] {
  const dir = mkdtempSync(join(tmpdir(), 'props-'));
  const files = contents.map((c, i) => {
    const f = join(dir, `f${i}.properties`);
    writeFileSync(f, c);
    return f;
  });
  const out = execFileSync('java', [READER, ...files], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const lines = out.trim().split('\n').map((l) => JSON.parse(l) as { file: string; mode: 'bytes' | 'utf8'; props: Record<string, string> });
  return files.map((f) => ({
    bytes: (lines.find((l) => l.file === f && l.mode === 'bytes') as { props: Record<string, string> }).props,
    utf8: (lines.find((l) => l.file === f && l.mode === 'utf8') as { props: Record<string, string> }).props,
  }));
}
