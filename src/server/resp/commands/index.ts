// Every command the server implements, and the command table built from them: the only registry
// of RESP commands (dispatch, COMMAND, and the command labels of metrics and INFO commandstats).
import { type CommandSpec, CommandTable } from '../command-table.js';
import { BITMAP_COMMANDS } from './bitmaps.js';
import { CLUSTER_COMMANDS } from './cluster.js';
import { CLUSTER_PROTOCOL_COMMANDS } from './cluster-protocol.js';
import { CONNECTION_COMMANDS } from './connection.js';
import { COUNTER_COMMANDS } from './counters.js';
import { EXPIRE_COMMANDS } from './expire.js';
import { HASH_COMMANDS } from './hashes.js';
import { KEY_COMMANDS } from './keys.js';
import { PUBSUB_COMMANDS } from './pubsub.js';
import { SCRIPTING_COMMANDS } from './scripting.js';
import { SERVER_COMMANDS } from './server.js';
import { STRING_COMMANDS } from './strings.js';
import { TRANSACTION_COMMANDS } from './transactions.js';

export function allCommands(): CommandSpec[] {
  return [
    ...CONNECTION_COMMANDS,
    ...SERVER_COMMANDS,
    ...STRING_COMMANDS,
    ...BITMAP_COMMANDS,
    ...COUNTER_COMMANDS,
    ...HASH_COMMANDS,
    ...KEY_COMMANDS,
    ...TRANSACTION_COMMANDS,
    ...EXPIRE_COMMANDS,
    ...CLUSTER_COMMANDS,
    ...CLUSTER_PROTOCOL_COMMANDS,
    ...PUBSUB_COMMANDS,
    ...SCRIPTING_COMMANDS,
  ];
}

/** COMMAND_TABLE: the table every RESP server dispatches through and the metrics count by. */
export const COMMAND_TABLE: CommandTable = new CommandTable(allCommands());
