/**
 * The one place that loads `@peculiar/x509`: it loads the `reflect-metadata` polyfill the
 * library's dependency injection needs, then points the library at Node's WebCrypto.
 * Everything else in config-service imports `x509` from here, never from
 * `@peculiar/x509` directly, so the set-up always runs first.
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as webcrypto.Crypto);

export { x509 };
