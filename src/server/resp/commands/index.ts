// Every command the server implements, for the command table.
import type { CommandSpec } from '../command-table.js';
import { CONNECTION_COMMANDS } from './connection.js';
import { COUNTER_COMMANDS } from './counters.js';
import { EXPIRE_COMMANDS } from './expire.js';
import { KEY_COMMANDS } from './keys.js';
import { SERVER_COMMANDS } from './server.js';
import { STRING_COMMANDS } from './strings.js';
import { TRANSACTION_COMMANDS } from './transactions.js';

export function allCommands(): CommandSpec[] {
  return [
    ...CONNECTION_COMMANDS,
    ...SERVER_COMMANDS,
    ...STRING_COMMANDS,
    ...COUNTER_COMMANDS,
    ...KEY_COMMANDS,
    ...TRANSACTION_COMMANDS,
    ...EXPIRE_COMMANDS,
  ];
}
