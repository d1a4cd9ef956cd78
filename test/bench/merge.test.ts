import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { mergeResults } from '../../bench/merge.ts';
import type { ResultsFile } from '../../bench/report.ts';

/** `npm run bench -- --only=cost --merge`: a section re-run lands in results.json without staling the rest. */

const committed = JSON.parse(
  readFileSync(new URL('../../bench/results.json', import.meta.url), 'utf8'),
) as ResultsFile & { complete: boolean };
const machine = { ...committed.machine, date: '2030-01-01T00:00:00.000Z' };

describe('mergeResults', () => {
  it("replaces the re-run section's keys, keeps the others and the full run's machine, records the re-run", () => {
    const cost = { ...committed.cost!, transitions: 99 };
    const merged = mergeResults(
      committed,
      { machine, cost },
      ['cost'],
      'npm run bench -- --only=cost --merge',
      true,
    );
    expect(merged.cost?.transitions).toBe(99);
    expect(merged.coldStart).toEqual(committed.coldStart);
    expect(merged.scale).toEqual(committed.scale);
    expect(merged.machine).toEqual(committed.machine);
    expect(merged.runs?.at(-1)).toEqual({
      sections: ['cost'],
      command: 'npm run bench -- --only=cost --merge',
      machine,
    });
  });

  it('removes a key of the re-run section that the re-run did not produce, rather than keeping it stale', () => {
    const previous = { ...committed, watch: { requests: 1 } } as unknown as typeof committed;
    const merged = mergeResults(previous, { machine, cost: committed.cost! }, ['cost'], 'x', true);
    expect(merged.watch).toBeUndefined();
  });

  it('replaces an earlier re-run of the same sections and keeps one of other sections', () => {
    const once = mergeResults(committed, { machine, cost: committed.cost! }, ['cost'], 'first', true);
    const withScale = mergeResults(once, { machine, scale: committed.scale! }, ['scale'], 'scale', true);
    const again = mergeResults(withScale, { machine, cost: committed.cost! }, ['cost'], 'second', true);
    expect(again.runs?.map((r) => r.command)).toEqual(['scale', 'second']);
  });

  it('is complete only when both runs were', () => {
    expect(mergeResults(committed, { machine }, ['cost'], 'x', false).complete).toBe(false);
    expect(mergeResults({ ...committed, complete: false }, { machine }, ['cost'], 'x', true).complete).toBe(
      false,
    );
  });
});
