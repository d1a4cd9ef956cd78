import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { refProblem, validateRequest } from '#shared/deployments/validation.ts';
import { parseRegistryText } from '#shared/registry/file.ts';

const registry = parseRegistryText(
  readFileSync(new URL('../fixtures/registry.yaml', import.meta.url), 'utf8'),
);
const alice = { type: 'local', user: 'alice' } as const;
const body = (extra: Record<string, unknown> = {}) => ({
  application: 'hello-world',
  environment: 'staging',
  ...extra,
});

describe('ref validation', () => {
  it.each(['main', 'release/2026.11', 'feature/x_y-z', 'v1.2.3', 'a'.repeat(40), 'HEAD'])(
    'accepts %s',
    (ref) => {
      expect(refProblem(ref)).toBeUndefined();
    },
  );

  it.each([
    ['a shell metacharacter', 'main;rm -rf /'],
    ['a leading "-"', '--upload-pack=touch x'],
    ['a space', 'my branch'],
    ['".."', 'a..b'],
    ['"//"', 'a//b'],
    ['"@{"', 'main@{1}'],
    ['a component starting with "."', 'feature/.hidden'],
    ['a trailing "/"', 'feature/'],
    ['a trailing "."', 'feature.'],
    ['a ".lock" component', 'refs/x.lock'],
    ['a pull request ref', 'pr/12'],
    ['a newline', 'main\nrm'],
    ['a backtick', 'a`id`'],
    ['201 characters', `a${'b'.repeat(200)}`],
  ])('refuses a ref with %s', (_what, ref) => {
    expect(refProblem(ref)).toBeDefined();
  });
});

describe('validateRequest', () => {
  it('fills the default ref and dryRun', () => {
    expect(validateRequest(body(), alice, registry)).toMatchObject({ ref: 'main', dryRun: false });
  });

  it.each([
    ['an unknown application', body({ application: 'nope' }), 'UNKNOWN_APPLICATION', 404],
    ['an unknown environment', body({ environment: 'qa' }), 'UNKNOWN_ENVIRONMENT', 404],
    ['an unknown field', body({ stack: 'x' }), 'INVALID_FIELD', 400],
    ['a missing application', { environment: 'staging' }, 'INVALID_FIELD', 400],
    ['an ill-typed dryRun', body({ dryRun: 'yes' }), 'INVALID_FIELD', 400],
    ['a too long reason', body({ reason: 'x'.repeat(501) }), 'INVALID_FIELD', 400],
    ['a reason with control characters', body({ reason: 'a\u001b[31m' }), 'INVALID_REASON', 400],
    ['a bad ref', body({ ref: 'main;id' }), 'INVALID_REF', 400],
    ['a requester not allowed', body({ environment: 'prod' }), 'FORBIDDEN', 403],
    ['a non-object body', 'hello', 'INVALID_FIELD', 400],
  ])('refuses %s with %s', (_what, input, code, status) => {
    expect(() => validateRequest(input, alice, registry)).toThrow(
      expect.objectContaining({ code, httpStatus: status }),
    );
  });

  it('refuses a listed requester a direct ref deploy to prod, which takes promotions only', () => {
    expect(() =>
      validateRequest(body({ environment: 'prod' }), { type: 'local', user: 'release-manager' }, registry),
    ).toThrow(expect.objectContaining({ code: 'REF_NOT_ALLOWED' }));
  });

  it('refuses an unlisted requester before it looks at the ref policy', () => {
    expect(() => validateRequest(body({ environment: 'prod' }), alice, registry)).toThrow(
      expect.objectContaining({ code: 'FORBIDDEN' }),
    );
  });

  it('does not treat an inherited property name as an application', () => {
    expect(() => validateRequest(body({ application: 'constructor' }), alice, registry)).toThrow(
      expect.objectContaining({ code: 'UNKNOWN_APPLICATION' }),
    );
  });
});
