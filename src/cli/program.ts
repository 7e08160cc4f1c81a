// What `kvs` and `cairn` share: a commander program configured the same way, one place that
// turns errors into a one-line message and an exit code, and the exit codes themselves.
//
// Nothing here calls process.exit: the runner returns a code, the entry point stores it in
// process.exitCode, and Node exits once stdout and stderr are drained.
import { Command, CommanderError } from 'commander';
import { ClientError } from '../client/client.js';
import { CairnError, IoError, ReadOnlyError } from '../storage/errors.js';
import { PipeClosedError } from './output.js';
import { packageVersion } from './version.js';

/** EXIT_OK: the command did what was asked. */
export const EXIT_OK = 0;
/**
 * EXIT_FAILURE: kvs: any failure (`rm` of a missing key, an operating error). cairn: a negative
 * answer (key not found, `check` found damage).
 */
export const EXIT_FAILURE = 1;
/** EXIT_USAGE: bad command line (both programs, as clap does); cairn: also operating errors. */
export const EXIT_USAGE = 2;
/**
 * EXIT_MEMBER_STARTED_BEFORE: `cairn serve` refused a cluster member's start from an empty
 * directory because its peers record that member id as started (or removed): its directory was
 * lost. Also a member whose own member.json records its removal from the cluster, and a running
 * member that learned of its removal and stopped (as etcd's does). Distinct from 2 so that a
 * supervisor does not restart it in a loop (docs/cluster-ops.md).
 */
export const EXIT_MEMBER_STARTED_BEFORE = 3;
/** EXIT_ERROR_CAIRN: cairn's code for an operating error (grep's convention: 0 yes, 1 no, 2 trouble). */
export const EXIT_ERROR_CAIRN = 2;

/** CliError: a failure the CLI itself detects, reported as `<program>: <message>`. */
export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliError';
  }
}

/** Cli: what a command's action needs from the program that runs it. */
export interface Cli {
  readonly name: string;
  /** exitCode: what the process exits with when the action returns normally. */
  exitCode: number;
}

export interface ProgramSpec {
  readonly name: string;
  readonly description: string;
  /** errorExitCode: the exit code for operating errors (thrown from an action). */
  readonly errorExitCode: number;
}

/**
 * createProgram returns a commander program that: prints `<name> <version>` for -V/--version,
 * rejects unknown commands, unknown options and excess arguments, prints usage after every
 * usage error, and throws instead of exiting (runProgram turns that into an exit code).
 */
export function createProgram(spec: ProgramSpec): { program: Command; cli: Cli } {
  const cli: Cli = { name: spec.name, exitCode: EXIT_OK };
  const program = new Command(spec.name)
    .description(spec.description)
    .version(`${spec.name} ${packageVersion()}`, '-V, --version', 'print the version and exit')
    .helpOption('-h, --help', 'print help and exit')
    .helpCommand(false)
    .allowExcessArguments(false)
    .allowUnknownOption(false)
    .showHelpAfterError()
    .exitOverride();
  return { program, cli };
}

/** runProgram parses `args` (without node and script) and returns the process's exit code. */
export async function runProgram(
  program: Command,
  cli: Cli,
  spec: ProgramSpec,
  args: readonly string[],
): Promise<number> {
  try {
    // Nothing at all: say so before the usage commander prints, as for any usage error (clap
    // does, which the course's kvs follows).
    if (args.length === 0 && program.commands.length > 0)
      process.stderr.write(
        `error: a command is required (${program.commands.map((c) => c.name()).join(', ')})\n`,
      );
    await program.parseAsync([...args], { from: 'user' });
    return cli.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander already printed the message (and the usage) on stderr, or the help/version
      // on stdout for -h/-V (exit code 0).
      return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    // The reader of our output went away (`cairn scan | head`): nothing to report.
    if (err instanceof PipeClosedError) return cli.exitCode;
    process.stderr.write(`${spec.name}: ${describeError(err, spec.name)}\n`);
    if (process.env.CAIRN_DEBUG && err instanceof Error && err.stack !== undefined) {
      process.stderr.write(`${err.stack}\n`);
    }
    return spec.errorExitCode;
  }
}

/**
 * CLI_READ_ONLY_ADVICE: what a CLI user does with a store that cannot be opened for writing (a
 * read-only file system, a full disk): the embedded API's `{ readOnly: true }` is no advice for
 * the command line, where the reading commands open such a store read-only by themselves.
 */
export const CLI_READ_ONLY_ADVICE =
  '`cairn get`, `cairn scan` and `cairn stats` (with --dir) still read it: they open it read-only';

/**
 * describeError renders any thrown value as one line, without a stack trace. `program` set: a
 * command line's message (an open refused for writing gets the CLI's advice, not the API's).
 */
export function describeError(err: unknown, program?: string): string {
  let message: string;
  const readable =
    program !== undefined && (err instanceof ReadOnlyError || err instanceof IoError)
      ? err.readableReason
      : undefined;
  if (readable !== undefined) {
    message = `${readable}; ${CLI_READ_ONLY_ADVICE}`;
  } else if (err instanceof CairnError || err instanceof CliError || err instanceof ClientError) {
    // Our own errors say what happened in their message; their class names are noise.
    message = err.message;
  } else if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    // Node system errors already start with their code ("EACCES: permission denied, ...").
    message = code === undefined || err.message.startsWith(code) ? err.message : `${code}: ${err.message}`;
    if (err.name !== 'Error' && !message.startsWith(err.name)) message = `${err.name}: ${message}`;
  } else {
    message = String(err);
  }
  return message.replace(/\s*\n\s*/g, ' ').trim() || 'unknown error';
}
