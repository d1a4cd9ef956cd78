/**
 * `npm run bench:docs`: renders every figure the docs quote from bench/results.json into the blocks between
 * `<!-- bench:NAME:start -->` and `<!-- bench:NAME:end -->` in docs/benchmarks.md (and README.md, if it has
 * any), so no quoted number can drift from the run it came from. `--check` writes nothing and exits 1 when a
 * file differs from what it would render (test/docs/bench-docs.test.ts does the same in the suite).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  coldStartTable,
  costBlock,
  machineBlock,
  planBlock,
  pricesBlock,
  type ResultsFile,
  summarize,
  summaryTable,
} from '../bench/report.ts';

export const ROOT = fileURLToPath(new URL('../', import.meta.url));
export const RESULTS_PATH = 'bench/results.json';
export const DOC_PATHS = ['docs/benchmarks.md', 'README.md'] as const;

/** Every block a doc may hold, rendered from one results.json. The summary rows are recomputed, never copied. */
export function renderBlocks(results: ResultsFile): Record<string, string> {
  return {
    machine: machineBlock(results),
    summary: summaryTable(summarize(results)),
    'cold-start': coldStartTable(results),
    cost: costBlock(results),
    prices: pricesBlock(results),
    plan: planBlock(results),
  };
}

const MARKER = /<!-- bench:([a-z-]+):(start|end) -->/g;

/**
 * The text with each block's content replaced. Throws on a block name it cannot render, an end without its
 * start, a start without its end, or a block inside another: a typo must not leave a stale block in place.
 */
export function applyBlocks(text: string, blocks: Record<string, string>, file = 'the document'): string {
  let out = '';
  let last = 0;
  let open: { name: string; at: number } | undefined;
  for (const match of text.matchAll(MARKER)) {
    const [marker, name = '', edge] = match;
    const at = match.index ?? 0;
    if (edge === 'start') {
      if (open) throw new Error(`${file}: bench:${name} starts inside bench:${open.name}`);
      if (!(name in blocks)) {
        throw new Error(`${file}: no block named bench:${name} (known: ${Object.keys(blocks).join(', ')})`);
      }
      out += text.slice(last, at + marker.length);
      open = { name, at };
    } else {
      if (open?.name !== name) throw new Error(`${file}: bench:${name}:end without its start`);
      out += `\n${blocks[name]}\n${marker}`;
      open = undefined;
    }
    last = at + marker.length;
  }
  if (open) throw new Error(`${file}: bench:${open.name}:start without its end`);
  return out + text.slice(last);
}

/** The names of the blocks a text holds, in order. */
export const blockNames = (text: string): string[] =>
  [...text.matchAll(MARKER)].filter((m) => m[2] === 'start').map((m) => m[1] ?? '');

/** The text with every block's content taken out (what is hand-written). */
export const withoutBlocks = (text: string): string =>
  text.replace(/<!-- bench:([a-z-]+):start -->[\s\S]*?<!-- bench:\1:end -->/g, '');

export function loadResults(path = `${ROOT}${RESULTS_PATH}`): ResultsFile {
  return JSON.parse(readFileSync(path, 'utf8')) as ResultsFile;
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { check: { type: 'boolean' } } });
  const blocks = renderBlocks(loadResults());
  const stale: string[] = [];
  for (const path of DOC_PATHS) {
    const file = `${ROOT}${path}`;
    const text = readFileSync(file, 'utf8');
    const rendered = applyBlocks(text, blocks, path);
    if (rendered === text) continue;
    stale.push(path);
    if (!values.check) writeFileSync(file, rendered);
  }
  if (values.check && stale.length > 0) {
    console.error(`bench:docs: ${stale.join(', ')} differ from ${RESULTS_PATH}; run npm run bench:docs`);
    process.exit(1);
  }
  console.error(
    stale.length === 0
      ? 'bench:docs: up to date'
      : `bench:docs: rendered ${stale.join(', ')} from ${RESULTS_PATH}`,
  );
}
