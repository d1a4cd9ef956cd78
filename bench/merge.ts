import type { Machine, ResultsFile } from './report.ts';

/** The results.json keys each bench section writes. */
export const SECTION_KEYS = {
  cold: ['coldStart'],
  overhead: ['overhead'],
  ack: ['ack'],
  cost: ['cost', 'monthly', 'burst', 'watch'],
  scale: ['scale'],
  history: ['history'],
} as const satisfies Record<string, readonly (keyof ResultsFile)[]>;
export type Section = keyof typeof SECTION_KEYS;

/**
 * `npm run bench -- --only=cost --merge`: a re-run of some sections on top of the committed full run. The
 * sections' keys are replaced (a key the re-run did not produce is removed, never left stale), everything
 * else is kept, and the re-run is recorded in `runs` with its own machine and load, replacing earlier re-runs
 * of no more than these sections. The file stays `complete` only if both runs were.
 */
export function mergeResults(
  previous: ResultsFile & { complete?: boolean },
  rerun: ResultsFile,
  sections: readonly Section[],
  command: string,
  complete: boolean,
): ResultsFile & { complete: boolean } {
  const merged: Record<string, unknown> = { ...previous };
  delete merged.costRerun;
  for (const section of sections) {
    for (const key of SECTION_KEYS[section]) {
      const value = rerun[key];
      if (value === undefined) delete merged[key];
      else merged[key] = value;
    }
  }
  const earlier = (previous.runs ?? []).filter(
    (run) => !run.sections.every((s) => sections.includes(s as Section)),
  );
  const runs: { sections: string[]; command: string; machine: Machine }[] = [
    ...earlier,
    { sections: [...sections], command, machine: rerun.machine },
  ];
  return {
    ...(merged as unknown as ResultsFile),
    machine: previous.machine,
    runs,
    complete: previous.complete === true && complete,
  };
}
