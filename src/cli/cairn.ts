#!/usr/bin/env node
// cairn: the friendly command line over the same engines and directory format as `kvs` and the
// embedded API. One file per subcommand in ./commands; see docs/cli.md for every flag, output
// and exit code.
import { registerCheck } from './commands/check.js';
import { registerEndpoint } from './commands/endpoint.js';
import { registerGet } from './commands/get.js';
import { registerMember } from './commands/member.js';
import { registerMoveLeader } from './commands/move-leader.js';
import { registerRepair } from './commands/repair.js';
import { registerRm } from './commands/rm.js';
import { registerScan } from './commands/scan.js';
import { registerServe } from './commands/serve.js';
import { registerSet } from './commands/set.js';
import { registerSnapshot } from './commands/snapshot.js';
import { registerStats } from './commands/stats.js';
import { createProgram, EXIT_ERROR_CAIRN, type ProgramSpec, runProgram } from './program.js';

const spec: ProgramSpec = {
  name: 'cairn',
  description: 'Cairn: a durable key-value database. Data commands default to the current directory.',
  errorExitCode: EXIT_ERROR_CAIRN,
};

const { program, cli } = createProgram(spec);

// Data commands.
registerGet(program, cli);
registerSet(program, cli);
registerRm(program, cli);
registerScan(program, cli);
// Inspection and repair.
registerStats(program, cli);
registerCheck(program, cli);
registerRepair(program, cli);
// Servers.
registerServe(program, cli);
registerSnapshot(program, cli);
// Cluster operations (over the members' HTTP API).
registerMember(program, cli);
registerEndpoint(program, cli);
registerMoveLeader(program, cli);

process.exitCode = await runProgram(program, cli, spec, process.argv.slice(2));
