/**
 * One-off helper for issue 19 (the domain layout of functions/shared): rewrites import specifiers that name a
 * file by its old path to its new one, keeping each import's style (`#shared/...` stays an alias, a relative
 * path stays relative). Branches that started before the move can run it after `git rebase main`:
 *   node scripts/layout-rewrite-imports.ts <files or folders...>
 * It can be deleted once no open branch predates the move.
 */
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/** Old path -> new path, both from functions/shared/. */
export const MOVES: Record<string, string> = {
  'registry.ts': 'registry/registry.ts',
  'registry-schema.ts': 'registry/schema.ts',
  'registry-file.ts': 'registry/file.ts',
  'bundled-registry.ts': 'registry/bundled.ts',
  'calendar.ts': 'registry/calendar.ts',
  'requester.ts': 'registry/requester.ts',
  'deployments.ts': 'deployments/record.ts',
  'intake.ts': 'deployments/intake.ts',
  'validation.ts': 'deployments/validation.ts',
  'releases.ts': 'deployments/releases.ts',
  'settle.ts': 'deployments/settle.ts',
  'freeze-override.ts': 'deployments/freeze-override.ts',
  'buildspecs.ts': 'jobs/buildspecs.ts',
  'job-env.ts': 'jobs/job-env.ts',
  'target-session.ts': 'jobs/target-session.ts',
  'job-specs.ts': 'jobs/job-specs.ts',
  'slack-ports.ts': 'chat/ports.ts',
  'slack-store.ts': 'aws/slack-store.ts',
  'store.ts': 'aws/store.ts',
  'diagnose.ts': 'diagnosis/diagnose.ts',
  'diagnose-statements.ts': 'diagnosis/statements.ts',
};

const root = resolve(import.meta.dirname, '..');
const SHARED = join(root, 'functions/shared');
const moved = new Map(Object.entries(MOVES).map(([from, to]) => [join(SHARED, from), join(SHARED, to)]));
const movedBack = new Map([...moved].map(([from, to]) => [to, from]));

/** Specifiers in `from '…'`, `import '…'` and `import('…')`. */
const SPECIFIER = /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])([^'"\n]+)\2/g;

export function rewrite(file: string, text: string): string {
  // A file that has moved already resolves its relative imports from where it stood before the move.
  const oldFile = movedBack.get(file) ?? file;
  return text.replace(SPECIFIER, (whole, lead: string, quote: string, spec: string) => {
    if (spec.startsWith('#shared/')) {
      const target = moved.get(join(SHARED, spec.slice('#shared/'.length)));
      return target ? `${lead}${quote}#shared/${relative(SHARED, target)}${quote}` : whole;
    }
    if (!spec.startsWith('.')) return whole;
    // Idempotent: an import that resolves where the file stands now is left as it is.
    if (oldFile !== file && existsSync(resolve(dirname(file), spec))) return whole;
    const oldTarget = resolve(dirname(oldFile), spec);
    const target = moved.get(oldTarget) ?? oldTarget;
    if (target === oldTarget && oldFile === file) return whole;
    let next = relative(dirname(file), target);
    if (!next.startsWith('.')) next = `./${next}`;
    return `${lead}${quote}${next}${quote}`;
  });
}

function* files(path: string): Generator<string> {
  if (statSync(path).isDirectory()) {
    for (const name of readdirSync(path)) {
      if (name === 'node_modules' || name.startsWith('.')) continue;
      yield* files(join(path, name));
    }
  } else if (/\.(ts|mts|mjs|js)$/.test(path)) yield path;
}

if (import.meta.main) {
  for (const arg of process.argv.slice(2)) {
    for (const file of files(resolve(arg))) {
      const text = readFileSync(file, 'utf8');
      const next = rewrite(file, text);
      if (next !== text) {
        writeFileSync(file, next);
        console.log(`rewrote ${relative(root, file)}`);
      }
    }
  }
}
