import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { dependencyViolations, type ImportGraph, importGraph } from '#test/support/dependency-rules.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const graphOf = (edges: Record<string, string[]>): ImportGraph =>
  new Map(Object.entries(edges).map(([from, to]) => [from, new Set(to)]));

describe('the dependency rules of functions/ (docs/design.md, "Layout")', () => {
  it('hold for the code as it stands', async () => {
    const graph = await importGraph(root, ['functions', 'local']);
    // The graph must be the real one: a resolver that lost the #shared aliases would pass every rule.
    expect(graph.get('functions/acquire-lock/core.ts')).toContain('functions/shared/queue/lock.ts');
    expect(graph.get('functions/shared/aws/sts.ts')).toContain('@aws-sdk/client-sts');
    expect(dependencyViolations(graph)).toEqual([]);
  });

  it('refuse an AWS SDK client in a core or a domain folder', () => {
    const graph = graphOf({
      'functions/acquire-lock/core.ts': ['@aws-sdk/client-dynamodb'],
      'functions/shared/queue/lock.ts': ['@aws-sdk/lib-dynamodb'],
      'functions/acquire-lock/handler.ts': ['@aws-sdk/client-dynamodb'],
      'functions/shared/aws/store.ts': ['@aws-sdk/lib-dynamodb'],
    });
    expect(dependencyViolations(graph)).toEqual([
      { rule: 'sdk-outside-adapter', from: 'functions/acquire-lock/core.ts', to: '@aws-sdk/client-dynamodb' },
      { rule: 'sdk-outside-adapter', from: 'functions/shared/queue/lock.ts', to: '@aws-sdk/lib-dynamodb' },
    ]);
  });

  it('refuse a core or a domain folder that imports an AWS adapter', () => {
    const graph = graphOf({
      'functions/record-result/core.ts': ['functions/shared/aws/store.ts'],
      'functions/record-result/handler.ts': ['functions/shared/aws/runtime.ts'],
      'functions/shared/aws/runtime.ts': ['functions/shared/aws/store.ts'],
    });
    expect(dependencyViolations(graph)).toEqual([
      {
        rule: 'core-imports-adapter',
        from: 'functions/record-result/core.ts',
        to: 'functions/shared/aws/store.ts',
      },
    ]);
  });

  it('refuse anything under functions/ that imports local/', () => {
    const graph = graphOf({
      'functions/shared/registry/file.ts': ['local/config.ts'],
      'local/store.ts': ['functions/shared/aws/store.ts'],
    });
    expect(dependencyViolations(graph)).toEqual([
      { rule: 'functions-import-local', from: 'functions/shared/registry/file.ts', to: 'local/config.ts' },
    ]);
  });

  it('take each cross-cutting module at the top of functions/shared on its own', () => {
    const graph = graphOf({
      'functions/shared/config.ts': ['functions/shared/jobs/job-specs.ts'],
      'functions/shared/jobs/job-specs.ts': ['functions/shared/types.ts'],
      'functions/shared/jobs/job-env.ts': ['functions/shared/errors.ts'],
      'functions/shared/errors.ts': ['functions/shared/jobs/job-env.ts'],
    });
    const violations = dependencyViolations(graph);
    expect(violations).toHaveLength(2);
    expect(violations).toEqual(
      expect.arrayContaining([
        { rule: 'folder-cycle', from: 'functions/shared/jobs/job-env.ts', to: 'functions/shared/errors.ts' },
        { rule: 'folder-cycle', from: 'functions/shared/errors.ts', to: 'functions/shared/jobs/job-env.ts' },
      ]),
    );
  });

  it('refuse two folders that import each other, through any number of files', () => {
    const graph = graphOf({
      'functions/shared/jobs/job-env.ts': ['functions/shared/registry/registry.ts'],
      'functions/shared/registry/requester.ts': ['functions/shared/deployments/record.ts'],
      'functions/shared/deployments/settle.ts': ['functions/shared/jobs/target-session.ts'],
      // A loop inside one folder is that folder's business.
      'functions/shared/registry/registry.ts': ['functions/shared/registry/schema.ts'],
      'functions/shared/registry/schema.ts': ['functions/shared/registry/registry.ts'],
    });
    expect(dependencyViolations(graph)).toEqual(
      expect.arrayContaining([
        {
          rule: 'folder-cycle',
          from: 'functions/shared/jobs/job-env.ts',
          to: 'functions/shared/registry/registry.ts',
        },
        {
          rule: 'folder-cycle',
          from: 'functions/shared/registry/requester.ts',
          to: 'functions/shared/deployments/record.ts',
        },
        {
          rule: 'folder-cycle',
          from: 'functions/shared/deployments/settle.ts',
          to: 'functions/shared/jobs/target-session.ts',
        },
      ]),
    );
    expect(dependencyViolations(graph)).toHaveLength(3);
  });
});
