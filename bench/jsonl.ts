/** Benchmark results as JSON lines: every row is printed and appended to the run's results file. */
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

/** Prints `row` as one JSON line and appends it to `path` (its directory created as needed). */
export function appendJsonl(path: string, row: unknown): void {
  const line = JSON.stringify(row);
  console.log(line);
  mkdirSync(dirname(path), { recursive: true });
  appendFileSync(path, line + '\n');
}
