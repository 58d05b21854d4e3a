/**
 * PKCS#12 keystores (RFC 7292) for JVM clients: one private key and its certificate chain,
 * as `pki issue --p12` writes them.
 *
 * Built with PKIjs over Node's WebCrypto: the key is a PKCS8ShroudedKeyBag encrypted with
 * PBES2 (PBKDF2-HMAC-SHA-256, AES-256-CBC), the certificates sit in a password-encrypted
 * SafeContents (same algorithms), and the whole is protected by an HMAC-SHA-256 MAC (the
 * PKCS#12 key derivation). These are the algorithms Java writes by default since JDK
 * 8u301/11.0.12/17 (JDK-8153005), so `keytool` and `KeyStore.getInstance("PKCS12")` read
 * the file, as do OpenSSL 1.1.1+ and Go's `software.sslmate.com/src/go-pkcs12`.
 *
 * The key and its certificate carry the same `localKeyId` and a `friendlyName`: the alias
 * the JVM shows (`keytool -list`).
 */
import { createHash, createPrivateKey, webcrypto, X509Certificate } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { CFG_ERR_PKI } from '../errors.js';

const OID_KEY_BAG_SHROUDED = '1.2.840.113549.1.12.10.1.2';
const OID_CERT_BAG = '1.2.840.113549.1.12.10.1.3';
const OID_X509_CERTIFICATE = '1.2.840.113549.1.9.22.1';
const OID_FRIENDLY_NAME = '1.2.840.113549.1.9.20';
const OID_LOCAL_KEY_ID = '1.2.840.113549.1.9.21';
/** PBKDF2 iterations of the key bag, the certificates and the MAC (Java's default is 10000). */
const ITERATIONS = 10_000;

const engine = new pkijs.CryptoEngine({ name: 'node', crypto: webcrypto as unknown as pkijs.CryptoEngineParameters['crypto'] });

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

function bagAttributes(alias: string, keyId: ArrayBuffer): pkijs.Attribute[] {
  return [
    new pkijs.Attribute({ type: OID_FRIENDLY_NAME, values: [new asn1js.BmpString({ value: alias })] }),
    new pkijs.Attribute({ type: OID_LOCAL_KEY_ID, values: [new asn1js.OctetString({ valueHex: keyId })] }),
  ];
}

/** Splits a PEM bundle into DER certificates, leaf first. */
function certificatesOf(chainPem: string): Uint8Array[] {
  const blocks = chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => new Uint8Array(new X509Certificate(b).raw));
}

/**
 * Builds a PKCS#12 keystore holding `keyPem` and the certificates of `chainPem`.
 *
 * @param keyPem - the private key (PKCS#8 or SEC1/PKCS#1 PEM, unencrypted; ECDSA or RSA).
 * @param chainPem - the certificate first, then its issuers (PEM).
 * @param password - protects the key, the certificates and the MAC; at least 6 characters
 *   (keytool's minimum). Characters outside the BMP are refused (PKCS#12 passwords are BMPString).
 * @param alias - the `friendlyName` of the entry (`keytool -list` shows it).
 * @returns the DER bytes of the PFX.
 * @throws CFG_ERR_PKI when the password is too short or the key does not match the certificate.
 */
export async function buildPkcs12(keyPem: string, chainPem: string, password: string, alias: string): Promise<Uint8Array> {
  if (password.length < 6) throw new CFG_ERR_PKI('the PKCS#12 password must have at least 6 characters (keytool refuses shorter ones)');
  if ([...password].some((c) => c.codePointAt(0)! > 0xffff)) throw new CFG_ERR_PKI('the PKCS#12 password must not hold characters outside the Basic Multilingual Plane');
  const certs = certificatesOf(chainPem);
  if (certs.length === 0) throw new CFG_ERR_PKI('no certificate to put in the PKCS#12 keystore');
  const key = createPrivateKey(keyPem);
  const leaf = new X509Certificate(Buffer.from(certs[0]!));
  if (!leaf.checkPrivateKey(key)) throw new CFG_ERR_PKI('the private key does not belong to the certificate');
  const pkcs8 = new Uint8Array(key.export({ type: 'pkcs8', format: 'der' }));
  const keyId = toArrayBuffer(createHash('sha1').update(leaf.raw).digest());
  // PKCS#12 passwords are BMPString: UTF-16BE with two trailing zero bytes (RFC 7292 B.1);
  // PKIjs appends the terminator itself for the MAC key, and PBES2 takes the UTF-8 bytes.
  const passwordBytes = toArrayBuffer(new TextEncoder().encode(password));
  const encryption = {
    password: passwordBytes,
    contentEncryptionAlgorithm: { name: 'AES-CBC', length: 256 } as pkijs.ContentEncryptionAlgorithm,
    hmacHashAlgorithm: 'SHA-256',
    iterationCount: ITERATIONS,
  };

  const keyBag = new pkijs.PKCS8ShroudedKeyBag({ parsedValue: pkijs.PrivateKeyInfo.fromBER(toArrayBuffer(pkcs8)) });
  await keyBag.makeInternalValues(encryption, engine);
  const certBags = certs.map(
    (der, i) =>
      new pkijs.SafeBag({
        bagId: OID_CERT_BAG,
        bagValue: new pkijs.CertBag({ certId: OID_X509_CERTIFICATE, parsedValue: pkijs.Certificate.fromBER(toArrayBuffer(der)) }),
        ...(i === 0 && { bagAttributes: bagAttributes(alias, keyId) }),
      }),
  );
  const pfx = new pkijs.PFX({
    parsedValue: {
      integrityMode: 0, // password-based integrity (a MAC)
      authenticatedSafe: new pkijs.AuthenticatedSafe({
        parsedValue: {
          safeContents: [
            { privacyMode: 0, value: new pkijs.SafeContents({ safeBags: [new pkijs.SafeBag({ bagId: OID_KEY_BAG_SHROUDED, bagValue: keyBag, bagAttributes: bagAttributes(alias, keyId) })] }) },
            { privacyMode: 1, value: new pkijs.SafeContents({ safeBags: certBags }) },
          ],
        },
      }),
    },
  });
  await pfx.parsedValue!.authenticatedSafe!.makeInternalValues({ safeContents: [{}, encryption] }, engine);
  await pfx.makeInternalValues({ password: passwordBytes, iterations: ITERATIONS, pbkdf2HashAlgorithm: { name: 'SHA-256' }, hmacHashAlgorithm: 'SHA-256' }, engine);
  return new Uint8Array(pfx.toSchema().toBER(false));
}
