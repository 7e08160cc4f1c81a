// GET /metrics: the Prometheus text exposition of the server's Metrics registry.
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Metrics } from '../metrics.js';

export function metricsRoutes(metrics: Metrics): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    app.get('/metrics', { config: { command: 'metrics' } }, async (_request, reply) => {
      const text = await metrics.render();
      return reply.type(metrics.contentType).send(text);
    });
  };
}
