// The cluster commands' HTTP client (`cairn member`, `endpoint`, `move-leader`): JSON requests
// to the members' HTTP addresses (--endpoints). A cluster-wide request goes to the endpoints in
// order until one answers (any member forwards writes to the leader); an endpoint that cannot
// be reached is skipped. A per-endpoint request (endpoint status and health) asks each one.
import { parseAddress } from './address.js';
import { CliError } from './program.js';

/** DEFAULT_ENDPOINTS: `cairn serve`'s default HTTP address. */
export const DEFAULT_ENDPOINTS = '127.0.0.1:8379';
/**
 * ADMIN_REQUEST_TIMEOUT_MS: how long one request may take. Above the server's 5 s request
 * timeout plus a leader handover, so that the server's own answer (UNCERTAIN, CLUSTER_DOWN)
 * arrives before we give up.
 */
export const ADMIN_REQUEST_TIMEOUT_MS = 15_000;
/**
 * PASSWORD_ENV: where the commands find the servers' --requirepass when --password is not given
 * (as redis-cli's REDISCLI_AUTH: a password on the command line shows in `ps`).
 */
export const PASSWORD_ENV = 'CAIRN_PASSWORD';

/** adminPassword: --password of the command being run (setAdminPassword), else PASSWORD_ENV. */
let adminPassword: string | undefined;

/** setAdminPassword: the command's --password (its preAction hook: addPasswordOption). */
export function setAdminPassword(password: string | undefined): void {
  adminPassword = password;
}

/** adminHeaders: the Authorization header every request carries when a password is known. */
export function adminHeaders(): Record<string, string> {
  const password = adminPassword ?? process.env[PASSWORD_ENV];
  return password === undefined || password === '' ? {} : { authorization: `Bearer ${password}` };
}

/** answerMessage: an error answer's message, with what to do about a 401. */
export function answerMessage(status: number, message: string): string {
  if (status !== 401) return message;
  return `${message} (the server has --requirepass: give it with --password, or in ${PASSWORD_ENV})`;
}

/** ENDPOINTS_MAX: more endpoints than a cluster has members is a mistake in the flag. */
export const ENDPOINTS_MAX = 32;

/** AdminHttpError: an endpoint answered with an error body. */
export class AdminHttpError extends CliError {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly endpoint: string,
  ) {
    super(message);
    this.name = 'AdminHttpError';
  }
}

/** EndpointUnreachableError: no answer from the endpoint (refused, reset, timed out). */
export class EndpointUnreachableError extends CliError {
  constructor(
    readonly endpoint: string,
    reason: string,
  ) {
    super(`${endpoint}: no answer (${reason})`);
    this.name = 'EndpointUnreachableError';
  }
}

/** parseEndpoints reads --endpoints HOST:PORT,HOST:PORT,... */
export function parseEndpoints(text: string): string[] {
  const list = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (list.length === 0) throw new CliError('--endpoints: give at least one HOST:PORT');
  if (list.length > ENDPOINTS_MAX) throw new CliError(`--endpoints: at most ${ENDPOINTS_MAX} endpoints`);
  for (const e of list) parseAddress(e);
  return list;
}

/**
 * ADMIN_GET_ATTEMPTS: how many times a GET (it changes nothing, so it can be repeated) is sent
 * when the connection fails in a way that may be passing: reset, closed without an answer, or
 * a failure with no code. A refused connection or a timeout is not repeated: the member is down
 * or stuck, and asking again only delays the answer.
 */
export const ADMIN_GET_ATTEMPTS = 3;
/** ADMIN_RETRY_DELAY_MS: the pause before a GET is sent again. */
export const ADMIN_RETRY_DELAY_MS = 100;

/** FetchFailure: why fetch() failed, as a code (for decisions) and a text (for people). */
export interface FetchFailure {
  readonly code: string;
  readonly text: string;
}

/** describeFetchError reads undici's error: the cause holds the system or parser error. */
export function describeFetchError(err: unknown): FetchFailure {
  const e = err as Error & { cause?: { code?: unknown; message?: unknown; name?: unknown } };
  const cause = e.cause;
  if (typeof cause?.code === 'string') return { code: cause.code, text: cause.code };
  // No code: name the cause as well as it can be named, so that a report says what happened.
  const detail = [cause?.name, cause?.message].filter((x) => typeof x === 'string' && x !== '').join(': ');
  const text = detail === '' ? e.message : `${e.message}: ${detail}`;
  return { code: e.name === 'TimeoutError' ? 'TIMEOUT' : '', text };
}

/**
 * unreachableReason says why an endpoint gave no answer. An answer that is not HTTP (llhttp's
 * HPE_* parse errors), or a connection closed with no answer (a RESP port drops an HTTP request:
 * resp.md), is most likely the wrong port.
 */
export function unreachableReason(failure: FetchFailure): string {
  if (failure.code.startsWith('HPE_') || failure.code === 'UND_ERR_SOCKET')
    return `no HTTP answer: is it a RESP port? --endpoints takes the members' HTTP addresses (--http); ${failure.code}`;
  return failure.text;
}

/** transient: a failure worth a second GET (see ADMIN_GET_ATTEMPTS). */
function transient(f: FetchFailure): boolean {
  return f.code === '' || f.code === 'ECONNRESET' || f.code === 'EPIPE' || f.code === 'UND_ERR_SOCKET';
}

/** requestOne sends one JSON request to one endpoint and returns the decoded answer. */
export async function requestOne(
  endpoint: string,
  method: string,
  path: string,
  body?: object,
  timeoutMs = ADMIN_REQUEST_TIMEOUT_MS,
): Promise<unknown> {
  let res: Response | undefined;
  const attempts = method === 'GET' ? ADMIN_GET_ATTEMPTS : 1;
  for (let attempt = 1; res === undefined; attempt++) {
    try {
      res = await fetch(`http://${endpoint}${path}`, {
        method,
        headers:
          body === undefined ? adminHeaders() : { 'content-type': 'application/json', ...adminHeaders() },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      const failure = describeFetchError(err);
      if (attempt < attempts && transient(failure)) {
        await new Promise((resolve) => setTimeout(resolve, ADMIN_RETRY_DELAY_MS));
        continue;
      }
      throw new EndpointUnreachableError(endpoint, unreachableReason(failure));
    }
  }
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    throw new AdminHttpError(
      res.status,
      'INTERNAL',
      `${endpoint}: answered ${res.status} with a body that is not JSON`,
      endpoint,
    );
  }
  if (!res.ok) {
    const error = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
    throw new AdminHttpError(
      res.status,
      error?.code ?? 'INTERNAL',
      answerMessage(res.status, error?.message ?? `${endpoint} answered ${res.status}`),
      endpoint,
    );
  }
  return parsed;
}

/** requestAny sends the request to the endpoints in order until one answers (an error answer counts). */
export async function requestAny(
  endpoints: readonly string[],
  method: string,
  path: string,
  body?: object,
): Promise<unknown> {
  const failures: string[] = [];
  for (const endpoint of endpoints) {
    try {
      return await requestOne(endpoint, method, path, body);
    } catch (err) {
      if (!(err instanceof EndpointUnreachableError)) throw err;
      failures.push(err.message);
    }
  }
  throw new CliError(`no endpoint answered: ${failures.join('; ')}`);
}
