// killAfterReady: the process side of the crash tests. Runs a writer child script with tsx,
// hands every stdout line to `onLine`, and SIGKILLs the child `killAfterMs` after it prints
// `ready`. Resolves once the child died of that SIGKILL and all its output was handed on;
// rejects if it exited on its own.
import { spawn } from 'node:child_process';

export function killAfterReady(
  script: string,
  args: readonly string[],
  killAfterMs: number,
  onLine: (line: string) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let buffered = '';
    let stderr = '';
    let killed = false;
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        if (line === 'ready') {
          setTimeout(() => {
            killed = true;
            child.kill('SIGKILL');
          }, killAfterMs);
        } else onLine(line);
      }
    });
    child.on('error', reject);
    // 'close', not 'exit': 'exit' may come before the last of the child's output has been read
    // from the pipe, and a line lost there is an acknowledgement the test never checks.
    child.on('close', (code, signal) => {
      if (!killed || signal !== 'SIGKILL')
        reject(new Error(`writer exited on its own (${code}/${signal}): ${stderr}`));
      else resolve();
    });
  });
}
