// The HTTP API's public surface for the server wiring.
export { createHttpApp, type HttpAppOptions } from './app.js';
export { type ErrorBody, HTTP_ERROR_CODES, type HttpErrorCode, STATUS_BY_CODE } from './errors.js';
export {
  BODY_BYTES_MAX_DEFAULT,
  HEADER_BYTES_MAX,
  KEY_PATH_CHARS_MAX,
  LIST_LIMIT_DEFAULT,
  LIST_LIMIT_MAX,
  LIST_PAGE_BYTES_MAX,
} from './limits.js';
export { openApiDocument } from './openapi.js';
