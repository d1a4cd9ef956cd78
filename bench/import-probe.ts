/**
 * Run in a fresh `node` per sample by bench/cold-start.ts: times `import()` of one module (a Lambda bundle or
 * a handler's source), so Node's own start-up is not in the number. Prints `{"ms": ...}` or `{"error": ...}`.
 */
import { pathToFileURL } from 'node:url';

const target = process.argv[2];
if (!target) {
  console.error('usage: node bench/import-probe.ts <module path>');
  process.exit(2);
}
const started = performance.now();
try {
  await import(pathToFileURL(target).href);
  process.stdout.write(JSON.stringify({ ms: performance.now() - started }));
} catch (error) {
  process.stdout.write(JSON.stringify({ error: (error as Error).message }));
}
