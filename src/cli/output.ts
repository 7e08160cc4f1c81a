// Writing command output to stdout: raw bytes (values are binary-safe), with back-pressure so a
// large scan does not buffer in memory, and a closed pipe (`cairn scan | head`) ends the output
// quietly instead of crashing.
let pipeClosed = false;
let listening = false;

/** PipeClosedError: stdout's reader went away; commands stop producing output. */
export class PipeClosedError extends Error {
  constructor() {
    super('stdout closed');
    this.name = 'PipeClosedError';
  }
}

function listen(): void {
  if (listening) return;
  listening = true;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') {
      pipeClosed = true;
      return;
    }
    process.stderr.write(`stdout: ${err.message}\n`);
    pipeClosed = true;
  });
}

/** write writes `chunks` to stdout, waiting for it to drain when its buffer is full. */
export async function write(...chunks: (string | Uint8Array)[]): Promise<void> {
  listen();
  let full = false;
  for (const chunk of chunks) {
    if (pipeClosed) throw new PipeClosedError();
    full = !process.stdout.write(chunk) || full;
  }
  if (full && !pipeClosed) {
    await new Promise<void>((resolve) => {
      const done = () => {
        process.stdout.off('drain', done);
        process.stdout.off('error', done);
        resolve();
      };
      process.stdout.once('drain', done);
      process.stdout.once('error', done);
    });
  }
}

/** isPipeClosed tells whether stdout's reader has gone away. */
export function isPipeClosed(): boolean {
  return pipeClosed;
}

/** writeErr writes one line to stderr. */
export function writeErrLine(line: string): void {
  process.stderr.write(`${line}\n`);
}
