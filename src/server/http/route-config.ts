// Each route names its metrics command in its config; the onResponse hook reads it back.
import type { FastifyRequest } from 'fastify';
import { type HttpCommand, UNKNOWN_COMMAND } from '../metrics.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** command: the `command` label this route's requests are counted under. */
    command?: HttpCommand;
  }
}

/** commandOf returns the metrics command of the route that served `request` ("unknown" for no route). */
export function commandOf(request: FastifyRequest): string {
  return request.routeOptions.config.command ?? UNKNOWN_COMMAND;
}
