// Makes the CLI executable after tsc (tsc does not keep modes).
import { chmodSync, existsSync } from 'node:fs';
const cli = new URL('../dist/bindings/node/cli.js', import.meta.url).pathname;
if (existsSync(cli)) chmodSync(cli, 0o755);
