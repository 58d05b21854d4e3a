/**
 * A JVM client over mutual TLS with the keystore `config-service pki issue --p12` writes
 * (issue 11): a Java 17 program loads it with `KeyStore.getInstance("PKCS12")`, as Spring
 * Cloud Config's client does for `spring.cloud.config.tls.key-store`, trusts the CA
 * through a PKCS#12 trust store made by keytool (docs/api.md, "Spring Boot clients"), and
 * reads the Spring endpoint of the real service.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCerts, makeGitRepo, runCli, runServiceCli, startTestService, type GitTestRepo, type TestPki, type TestService } from '#helpers';

let pki: TestPki;
let repo: GitTestRepo;
let service: TestService;
const work = mkdtempSync(path.join(os.tmpdir(), 'jvm-client-'));

const CLIENT = `
import java.io.FileInputStream;
import java.net.URL;
import java.security.KeyStore;
import javax.net.ssl.*;

public class Client {
  public static void main(String[] args) throws Exception {
    char[] keyPassword = args[1].toCharArray();
    KeyStore keys = KeyStore.getInstance("PKCS12");
    try (FileInputStream in = new FileInputStream(args[0])) { keys.load(in, keyPassword); }
    KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
    kmf.init(keys, keyPassword);
    KeyStore trust = KeyStore.getInstance("PKCS12");
    try (FileInputStream in = new FileInputStream(args[2])) { trust.load(in, args[3].toCharArray()); }
    TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
    tmf.init(trust);
    SSLContext tls = SSLContext.getInstance("TLS");
    tls.init(kmf.getKeyManagers(), tmf.getTrustManagers(), null);
    HttpsURLConnection c = (HttpsURLConnection) new URL(args[4]).openConnection();
    c.setSSLSocketFactory(tls.getSocketFactory());
    System.out.println(c.getResponseCode());
    System.out.println(new String(c.getInputStream().readAllBytes(), "UTF-8"));
  }
}
`;

beforeAll(async () => {
  pki = await makeCerts('jvm');
  // `pki issue` signs with the CA of a PKI folder: ca.crt (there already) and ca.key.
  writeFileSync(path.join(pki.dir, 'ca.key'), pki.ca.keyPem, { mode: 0o600 });
  repo = await makeGitRepo({ 'orders/application.yml': 'greeting: hello from config-service\n' });
  service = await startTestService({ pki, repository: { path: repo.dir } });
});

afterAll(async () => {
  await service?.close();
  repo?.remove();
  rmSync(work, { recursive: true, force: true });
});

describe('pki issue --p12 and a JVM client', () => {
  it('the keystore authenticates a Java 17 client to the Spring endpoint', async () => {
    const p12 = path.join(work, 'orders.p12');
    writeFileSync(path.join(work, 'p12-password.txt'), 'a-long-keystore-password\n');
    const issued = await runServiceCli(['pki', 'issue', '--dir', pki.dir, '--app', 'orders', '--p12', p12, '--p12-password-file', path.join(work, 'p12-password.txt')]);
    expect(issued.status, issued.stderr).toBe(0);
    expect(issued.stdout).toBe(`${path.join(pki.dir, 'orders.crt')}\n${path.join(pki.dir, 'orders.key')}\n${p12}\n`);
    // The trust store of docs/api.md, made as written there.
    const truststore = path.join(work, 'truststore.p12');
    execFileSync('keytool', ['-importcert', '-noprompt', '-alias', 'config-service-ca', '-file', pki.caFile, '-keystore', truststore, '-storetype', 'PKCS12', '-storepass', 'trust-store-password']);
    writeFileSync(path.join(work, 'Client.java'), CLIENT);
    const url = `${service.apiUrl.replace('127.0.0.1', 'localhost')}/orders/default`;
    const r = await runCli('java', ['-Djava.net.preferIPv4Stack=true', path.join(work, 'Client.java'), p12, 'a-long-keystore-password', truststore, 'trust-store-password', url], { cwd: work, env: process.env });
    expect(r.code, r.stderr).toBe(0);
    const [status, body] = [r.stdout.slice(0, r.stdout.indexOf('\n')), r.stdout.slice(r.stdout.indexOf('\n') + 1)];
    expect(status).toBe('200');
    const env = JSON.parse(body) as { name: string; propertySources: Array<{ source: Record<string, unknown> }> };
    expect(env.name).toBe('orders');
    expect(env.propertySources[0]?.source).toEqual({ greeting: 'hello from config-service' });
    // Issuing again without --force refuses and keeps the keystore.
    const before = readFileSync(p12);
    const again = await runServiceCli(['pki', 'issue', '--dir', pki.dir, '--app', 'orders', '--p12', p12, '--p12-password-file', path.join(work, 'p12-password.txt')]);
    expect(again.status).toBe(1);
    expect(again.stderr).toContain('already exist; use --force to replace them');
    expect(readFileSync(p12).equals(before)).toBe(true);
  }, 120_000);

  it('--p12 without a password is refused with exit 64, naming both ways to give one', async () => {
    const r = await runServiceCli(['pki', 'issue', '--dir', pki.dir, '--app', 'billing', '--p12', path.join(work, 'billing.p12')]);
    expect(r.status).toBe(64);
    expect(r.stderr).toBe('config-service: CFG_ERR_USAGE: --p12 needs a password: --p12-password-file <file>, or the variable CONFIG_SERVICE_P12_PASSWORD\n');
  });
});
