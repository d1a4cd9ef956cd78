import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  applyBlocks,
  blockNames,
  DOC_PATHS,
  loadResults,
  ROOT,
  renderBlocks,
  withoutBlocks,
} from '../../scripts/bench-docs.ts';

/**
 * Every figure docs/benchmarks.md quotes comes from bench/results.json through `npm run bench:docs`: the docs
 * must equal what the script renders from the committed results, and the prose around the blocks carries no
 * measured figure of its own (the issue found one row saying $0.000359 / 33× while the prose said $0.000350 / 34×).
 */

const results = loadResults();
const read = (path: string) => readFileSync(`${ROOT}${path}`, 'utf8');
const clone = <T>(value: T): T => structuredClone(value);

describe('docs rendered from bench/results.json (npm run bench:docs)', () => {
  it.each(DOC_PATHS)('%s equals what bench:docs renders from the committed results.json', (path) => {
    const text = read(path);
    expect(applyBlocks(text, renderBlocks(results), path)).toBe(text);
  });

  it('docs/benchmarks.md holds the summary, cold-start, cost, prices, plan and machine blocks', () => {
    expect(blockNames(read('docs/benchmarks.md')).sort()).toEqual(
      ['cold-start', 'cost', 'machine', 'plan', 'prices', 'summary'].sort(),
    );
  });

  it('quotes no measured figure outside the generated blocks', () => {
    for (const path of DOC_PATHS) {
      const prose = withoutBlocks(read(path));
      // Dollars, durations, sizes, units, ratios and multiples: what results.json holds.
      const figures = prose.match(
        /\$\d[\d.,]*|\b\d[\d.,]*\s?(?:ms|kB|WRU|RRU|×|%)(?![\w-])|\b\d\.\d\d\b|\b\d+ s\b/g,
      );
      expect({ path, figures }).toEqual({ path, figures: null });
    }
  });

  it('changes the rendered doc when a number in results.json changes', () => {
    const doc = read('docs/benchmarks.md');
    const changed = clone(results);
    if (!changed.cost) throw new Error('the committed results.json has no cost section');
    changed.cost.usd.total = 0.0123456;
    changed.cost.transitions = 97;
    const rendered = applyBlocks(doc, renderBlocks(changed));
    expect(rendered).not.toBe(doc);
    expect(rendered).toContain('$0.0123');
    expect(rendered).toContain('| 4. State transitions per happy-path deployment | 97 |');
  });

  it('recomputes the summary instead of copying the stored one', () => {
    const stale = clone(results) as typeof results & { summary?: unknown };
    stale.summary = [{ measurement: 'stale', result: '$0.000359', target: '—', met: undefined }];
    expect(renderBlocks(stale).summary).not.toContain('$0.000359');
  });

  it('renders cold-start rows with the unbundled-JS baseline when results.json has it, source maps on first', () => {
    const row = {
      function: 'ApiFunction',
      bytes: 300_000,
      gzipBytes: 100_000,
      bundleMs: 61,
      bundleSourceMapsMs: 77,
      unbundledJsMs: 210,
      ratio: 0.37,
      samples: 10,
      composition: { 'AWS SDK': 200_000 },
      errors: [],
    };
    const coldStart = [row] as unknown as NonNullable<typeof results.coldStart>;
    const block = renderBlocks({ ...clone(results), coldStart })['cold-start'];
    expect(block).toContain('Init, unbundled JS');
    expect(block).toContain('source maps on ÷ unbundled JS');
    expect(block).toContain('| ApiFunction | 293 kB | 98 kB | 77 ms | 61 ms | 210 ms | 0.37 |');
  });

  it('says a section is missing rather than rendering nothing', () => {
    const partial = clone(results);
    delete partial.watch;
    expect(renderBlocks(partial).cost).toContain('Not in bench/results.json: watch');
  });
});

describe('applyBlocks', () => {
  const blocks = { a: 'A', b: 'B' };
  it('replaces only what is between the markers', () => {
    const text = 'x\n<!-- bench:a:start -->\nold\n<!-- bench:a:end -->\ny';
    expect(applyBlocks(text, blocks)).toBe('x\n<!-- bench:a:start -->\nA\n<!-- bench:a:end -->\ny');
  });
  it('rejects a block name it cannot render (a typo would leave a stale block)', () => {
    expect(() => applyBlocks('<!-- bench:cots:start -->\n<!-- bench:cots:end -->', blocks)).toThrow(
      /bench:cots/,
    );
  });
  it('rejects a start without its end', () => {
    expect(() => applyBlocks('<!-- bench:a:start -->\nold', blocks)).toThrow(/without its end/);
  });
  it('rejects an end without its start and a block inside another', () => {
    expect(() => applyBlocks('old\n<!-- bench:a:end -->', blocks)).toThrow(/without its start/);
    expect(() =>
      applyBlocks(
        '<!-- bench:a:start --><!-- bench:b:start --><!-- bench:b:end --><!-- bench:a:end -->',
        blocks,
      ),
    ).toThrow(/inside/);
  });
});
