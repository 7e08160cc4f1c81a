// HTTP authentication: with `--requirepass`, the HTTP API asks for the same password RESP's AUTH
// does (docs/http.md, "Authentication"). A request carries it as
//   Authorization: Bearer <password>                      (Prometheus' `authorization`, scripts)
//   Authorization: Basic base64(<user>:<password>)        (curl -u, browsers; any user name,
//                                                          as RESP's AUTH <user> <password> for
//                                                          the one user Cairn has)
// Without it, or with another password: 401 UNAUTHORIZED and a `WWW-Authenticate` challenge.
// Open to all: GET /healthz (load balancers and orchestrators probe it without credentials; it
// says only whether the server serves) and GET /openapi.json (the API's description).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpError } from './errors.js';

/** OPEN_PATHS: the routes served without credentials. */
const OPEN_PATHS: ReadonlySet<string> = new Set(['/healthz', '/openapi.json']);

/** CHALLENGE: the 401's WWW-Authenticate header (RFC 9110 11.6.1; both schemes are accepted). */
export const CHALLENGE = 'Basic realm="cairn", charset="UTF-8"';

/** digest: the password's SHA-256, so that comparisons take the same time whatever the input's length. */
function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** passwordOf reads the password of an Authorization header (Bearer or Basic); undefined if none. */
export function passwordOf(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const space = header.indexOf(' ');
  if (space < 0) return undefined;
  const scheme = header.slice(0, space).toLowerCase();
  const credentials = header.slice(space + 1).trim();
  if (scheme === 'bearer') return credentials;
  if (scheme !== 'basic') return undefined;
  const decoded = Buffer.from(credentials, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : decoded.slice(colon + 1);
}

/** authorizationFor: the header a member sends with its own requests to another member. */
export function authorizationFor(password: string | undefined): Record<string, string> {
  return password === undefined ? {} : { authorization: `Bearer ${password}` };
}

/** pathOf: a request's path without its query. */
function pathOf(request: FastifyRequest): string {
  const q = request.url.indexOf('?');
  return q < 0 ? request.url : request.url.slice(0, q);
}

/** requirePassword makes every route but OPEN_PATHS ask for `password`. */
export function requirePassword(app: FastifyInstance, password: string): void {
  const want = digest(password);
  app.addHook('onRequest', async (request, reply) => {
    if (OPEN_PATHS.has(pathOf(request))) return;
    const given = passwordOf(request.headers.authorization);
    if (given !== undefined && timingSafeEqual(digest(given), want)) return;
    void reply.header('www-authenticate', CHALLENGE);
    throw new HttpError(
      'UNAUTHORIZED',
      given === undefined
        ? 'this server requires a password (--requirepass): send Authorization: Bearer <password>, or Basic with any user name'
        : 'wrong password',
    );
  });
}
