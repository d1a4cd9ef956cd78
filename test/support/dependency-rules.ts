/**
 * The dependency direction of functions/ (docs/design.md, "Layout"), checked over the import graph that
 * esbuild resolves: the same resolver, package.json "imports" aliases included, that builds the Lambda
 * bundles. `import type` is erased before esbuild sees it (it never reaches a bundle); the lint's
 * noRestrictedImports (biome.json) holds the SDK and local/ rules over every import, types included.
 */
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { build } from 'esbuild';

/** file (repository-relative) -> what it imports: repository-relative files or package names. */
export type ImportGraph = Map<string, Set<string>>;

export interface Violation {
  rule: 'sdk-outside-adapter' | 'core-imports-adapter' | 'functions-import-local' | 'folder-cycle';
  from: string;
  to: string;
}

/** The files under functions/ that may import an AWS SDK client: the adapters and the handlers. */
export function mayImportSdk(file: string): boolean {
  return (
    file.startsWith('functions/shared/aws/') ||
    /^functions\/[^/]+\/handler\.ts$/.test(file) ||
    // The doctor function's own adapters (docs/doctor.md): its probes and its run store.
    file === 'functions/doctor/aws-probe.ts' ||
    file === 'functions/doctor/run-store.ts'
  );
}

/**
 * The unit a loop is forbidden between: a domain folder of functions/shared (registry, queue, ...), one of
 * the small cross-cutting modules at its top (each on its own: config.ts may read a domain helper that
 * imports errors.ts; a loop of files is the lint's noImportCycles), or a function's folder.
 */
export function unitOf(file: string): string | undefined {
  const shared = /^functions\/shared\/([^/]+)\//.exec(file);
  if (shared) return `functions/shared/${shared[1]}`;
  if (/^functions\/shared\/[^/]+$/.test(file)) return file;
  const fn = /^functions\/([^/]+)\//.exec(file);
  return fn ? `functions/${fn[1]}` : undefined;
}

export function dependencyViolations(graph: ImportGraph): Violation[] {
  const violations: Violation[] = [];
  const units = new Map<string, Map<string, [string, string]>>();
  for (const [from, targets] of graph) {
    if (!from.startsWith('functions/')) continue;
    for (const to of targets) {
      if (/^@aws-sdk\//.test(to) && !mayImportSdk(from))
        violations.push({ rule: 'sdk-outside-adapter', from, to });
      if (to.startsWith('local/')) violations.push({ rule: 'functions-import-local', from, to });
      if (
        to.startsWith('functions/shared/aws/') &&
        !mayImportSdk(from) &&
        !from.startsWith('functions/shared/aws/')
      )
        violations.push({ rule: 'core-imports-adapter', from, to });
      const a = unitOf(from);
      const b = unitOf(to);
      if (a && b && a !== b) {
        if (!units.has(a)) units.set(a, new Map());
        units.get(a)!.set(b, units.get(a)!.get(b) ?? [from, to]);
      }
    }
  }
  for (const cycle of stronglyConnected(units)) {
    for (const a of cycle) {
      for (const [b, [from, to]] of units.get(a) ?? []) {
        if (cycle.includes(b)) violations.push({ rule: 'folder-cycle', from, to });
      }
    }
  }
  return violations;
}

/** Tarjan's strongly connected components; only those of two units or more (a loop). */
function stronglyConnected(edges: Map<string, Map<string, unknown>>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next += 1;
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v)?.keys() ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const v of edges.keys()) if (!index.has(v)) visit(v);
  return found;
}

function* sources(root: string, dir: string): Generator<string> {
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* sources(root, path);
    else if (/\.(ts|mjs)$/.test(entry.name) && !entry.name.endsWith('.d.ts')) yield path;
  }
}

/** The import graph of every source file under `dirs`, as esbuild resolves it. */
export async function importGraph(root: string, dirs: string[]): Promise<ImportGraph> {
  const entryPoints = dirs.flatMap((dir) => [...sources(root, dir)]);
  const { metafile } = await build({
    absWorkingDir: root,
    entryPoints,
    bundle: true,
    write: false,
    metafile: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    packages: 'external',
    outdir: 'dependency-graph',
    logLevel: 'silent',
  });
  const graph: ImportGraph = new Map();
  for (const [file, input] of Object.entries(metafile.inputs)) {
    const from = relative(root, join(root, file));
    graph.set(
      from,
      new Set(input.imports.map((i) => (i.external ? i.path : relative(root, join(root, i.path))))),
    );
  }
  return graph;
}
