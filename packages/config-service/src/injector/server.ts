/**
 * The injector's HTTPS listener: `POST /mutate` (AdmissionReview in and out) and
 * `/health/live`, `/health/ready` for the kubelet's probes (`scheme: HTTPS`). The TLS
 * files are reloaded when cert-manager renews them, as the API listener's are.
 */
import type https from 'node:https';
import type { TLSSocket } from 'node:tls';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import { installProblemHandlers } from '../http/problem.js';
import { loadTlsMaterial, secureContextOptions, TlsReloader } from '../http/tls.js';
import { loggerOptions, logSerializers } from '../logger.js';
import { parseAdmissionReview, reviewPod } from './review.js';
import type { InjectorSettings } from './settings.js';

type TlsServer = ConstructorParameters<typeof TlsReloader>[0];

/** A listening injector. */
export interface RunningInjector {
  app: FastifyInstance;
  /** `https://host:port` of the listener. */
  url: string;
  logger: Logger;
  close(): Promise<void>;
}

/**
 * AdmissionReviews of pods with large specs still fit: the API server sends at most
 * about 3 MiB (etcd's request limit), so 8 MiB is a bound, not a constraint.
 */
const BODY_LIMIT = 8 * 1024 * 1024;

/**
 * Builds the injector app (not listening).
 * @throws CFG_ERR_SETTINGS_INVALID when the TLS files cannot be read or do not match.
 */
export async function buildInjectorApp(settings: InjectorSettings, logger: FastifyBaseLogger): Promise<FastifyInstance> {
  const files = { ...settings.server.tls, crl: [] as string[] };
  const material = await loadTlsMaterial(files);
  const httpsOptions: https.ServerOptions = { ...secureContextOptions(material), minVersion: 'TLSv1.2' };
  const app = Fastify({ https: httpsOptions, loggerInstance: logger, bodyLimit: BODY_LIMIT, logController: new LogController({ disableRequestLogging: true }) });
  installProblemHandlers(app);
  app.post('/mutate', async (request, reply) => {
    const req = parseAdmissionReview(request.body);
    const { review, outcome } = reviewPod(req, settings);
    const level = outcome.result === 'denied' ? 'warn' : outcome.result === 'ignored' ? 'debug' : 'info';
    request.log[level]({ ...outcome, tlsProtocol: (request.raw.socket as TLSSocket).getProtocol?.() }, `admission ${outcome.result}`);
    return reply.type('application/json').send(review);
  });
  app.get('/health/live', async () => ({ status: 'live' }));
  app.get('/health/ready', async () => ({ status: 'ready' }));
  const reloader = new TlsReloader(app.server as unknown as TlsServer, files, material, logger);
  app.addHook('onListen', async () => reloader.start());
  app.addHook('onClose', async () => reloader.stop());
  return app;
}

/**
 * Starts `config-service injector`.
 * @param options.logger destination logger (default: pino JSON to stdout at `log.level`)
 */
export async function startInjector(settings: InjectorSettings, options: { logger?: Logger } = {}): Promise<RunningInjector> {
  const logger = options.logger ? options.logger.child({}, { serializers: logSerializers() }) : pino(loggerOptions(settings.log.level));
  const app = await buildInjectorApp(settings, logger as unknown as FastifyBaseLogger);
  await app.listen({ host: settings.server.host, port: settings.server.port });
  const addr = app.server.address();
  const url = addr && typeof addr === 'object' ? `https://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address === '0.0.0.0' ? '127.0.0.1' : addr.address}:${addr.port}` : `https://${String(addr)}`;
  logger.info({ url, annotationPrefix: settings.annotationPrefix, image: settings.configInit.image, identity: settings.identity.source }, 'config-service injector listening');
  return { app, url, logger, close: () => app.close() };
}
