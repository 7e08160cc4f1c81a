// Tables for the cluster commands' output (cli-table3), without colours: the output is read by
// people and by scripts alike.
import Table from 'cli-table3';

/** table renders rows under a header, ending with a newline. */
export function table(head: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const t = new Table({ head: [...head], style: { head: [], border: [] } });
  for (const row of rows) t.push([...row]);
  return `${t.toString()}\n`;
}
