// The public API of the RESP codec, shared by the server (src/server/resp/) and the client.
export { encodeCommand, encodeValue, formatDouble, ReplyWriter, SHARED } from './encoder.js';
export { RespProtocolError } from './errors.js';
export { splitInlineArgs } from './inline.js';
export * from './limits.js';
export { INCOMPLETE, ReplyParser } from './reply-parser.js';
export { RequestParser } from './request-parser.js';
export {
  RespAttributed,
  RespError,
  RespPush,
  type RespValue,
  RespVerbatim,
  type RespVersion,
} from './types.js';
