// The JS value model of RESP replies, what ReplyParser produces and ReplyWriter.value() encodes.
//
//   RESP type                        JS value
//   simple string  +OK               string
//   bulk string    $3 foo            Buffer (binary-safe)
//   integer        :42               number, or bigint outside Number's safe integers
//   null bulk/array $-1 *-1, null _  null
//   simple error -ERR, bulk error !  RespError (bulk: true for `!`)
//   array *, set ~, map %            RespValue[], Set<RespValue>, Map<RespValue, RespValue>
//   boolean #t                       boolean
//   double ,1.5                      number
//   big number (123                  bigint
//   verbatim =txt:...                RespVerbatim
//   push >                           RespPush
//   attribute |                      RespAttributed around the value it precedes
//
// Chosen for a client, not for a byte-exact echo: a double that is integral and an integer
// share `number`, and the three nulls share `null`. Encoding a value and parsing it back gives
// an equal value (see the round-trip property test), not necessarily the same bytes.

/** RespError is an error reply (`-ERR ...` or `!len ...`): a value, not a thrown exception. */
export class RespError extends Error {
  override name = 'RespError';
  /** code is the first word of the message, by Redis convention: ERR, WRONGTYPE, MOVED, ... */
  readonly code: string;
  constructor(
    message: string,
    /** bulk is true for a RESP3 bulk error (`!`), false for a simple error (`-`). */
    readonly bulk = false,
  ) {
    super(message);
    const blank = message.search(/\s/);
    this.code = blank === -1 ? message : message.slice(0, blank);
  }
}

/** RespVerbatim is a RESP3 verbatim string: `format` is three bytes such as `txt` or `mkd`. */
export class RespVerbatim {
  constructor(
    readonly format: string,
    readonly text: Buffer,
  ) {}
}

/** RespPush is a RESP3 out-of-band push (pub/sub messages, invalidations). */
export class RespPush {
  constructor(readonly items: RespValue[]) {}
}

/** RespAttributed is a value preceded by RESP3 attributes (`|`). Redis sends none today. */
export class RespAttributed {
  constructor(
    readonly attributes: Map<RespValue, RespValue>,
    readonly value: RespValue,
  ) {}
}

export type RespValue =
  | string
  | Buffer
  | number
  | bigint
  | boolean
  | null
  | RespError
  | RespVerbatim
  | RespPush
  | RespAttributed
  | RespValue[]
  | Set<RespValue>
  | Map<RespValue, RespValue>;

/** RespVersion: 2 until the client says `HELLO 3`. */
export type RespVersion = 2 | 3;
