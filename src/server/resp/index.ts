// The RESP server's public API.

export { DEFAULT_LIMITS, type RespServerLimits } from './limits.js';
export { createRespServer, type RespServer, type RespServerOptions } from './server.js';
export type { RespLogger, RespMetrics } from './types.js';
