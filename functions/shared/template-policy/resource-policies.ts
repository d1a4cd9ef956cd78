/**
 * Resource policies (rule resource-policy-outside-account): a bucket, queue, key, topic, secret, event bus or
 * function that lets in someone outside the target account. No IAM role is involved, so neither the trust rule
 * nor the boundary sees it: the boundary limits what the deploy role does, not whom a resource later admits.
 */
import {
  describe,
  intrinsicOf,
  isRecord,
  mayAllow,
  type ResolveContext,
  resolve,
  resolveList,
  resolveObjects,
  type Value,
} from './resolve.ts';
import {
  ACCOUNT_PINNING_KEYS,
  PRINCIPAL_PERMISSIONS,
  RESOURCE_POLICIES,
  SERVICE_PRINCIPAL_SUFFIXES,
} from './rules.ts';

/** `<name>.amazonaws.com`: an AWS service, written out (no wildcard, path or ARN). */
export function isServicePrincipal(name: string): boolean {
  return (
    SERVICE_PRINCIPAL_SUFFIXES.some((suffix) => name.endsWith(suffix) && name.length > suffix.length) &&
    !name.includes('*') &&
    !name.includes('/') &&
    !name.includes(':')
  );
}

/** The account itself, by id, or one of its IAM or STS principals by ARN. */
function inAccount(principal: string, ctx: ResolveContext): boolean {
  return (
    principal === ctx.accountId ||
    principal.startsWith(`arn:${ctx.partition}:iam::${ctx.accountId}:`) ||
    principal.startsWith(`arn:${ctx.partition}:sts::${ctx.accountId}:`)
  );
}

/** Every alternative is known and is `expected`. */
const alwaysIs = (values: Value[], expected: string) =>
  values.length > 0 && values.every((v) => 'known' in v && v.known === expected);

/** Whether a StringEquals condition pins the caller to the target account. */
function pinnedToAccount(condition: unknown, ctx: ResolveContext): boolean {
  if (!isRecord(condition) || !isRecord(condition.StringEquals)) return false;
  const keys = ACCOUNT_PINNING_KEYS.map((key) => key.toLowerCase());
  return Object.entries(condition.StringEquals).some(
    ([key, value]) => keys.includes(key.toLowerCase()) && alwaysIs(resolveList(value, ctx), ctx.accountId),
  );
}

const EVERYONE_PINNED = `no StringEquals condition pins ${ACCOUNT_PINNING_KEYS.join(', ')} to the target account`;

type Excepted = (principal: string) => boolean;

function statementProblems(statement: Record<string, unknown>, ctx: ResolveContext, excepted: Excepted) {
  if (!mayAllow(statement, ctx)) return [];
  const sid = typeof statement.Sid === 'string' ? ` in statement ${statement.Sid}` : '';
  if (statement.NotPrincipal !== undefined) {
    return [`allows NotPrincipal (everyone but the principals named)${sid}`];
  }
  const pinned = pinnedToAccount(statement.Condition, ctx);
  const problems: string[] = [];
  const consider = (kind: string | undefined, value: Value) => {
    if ('known' in value) {
      const principal = value.known;
      if (excepted(principal)) return;
      if (kind === 'Service' && isServicePrincipal(principal)) return;
      if (
        (kind === 'AWS' || kind === undefined) &&
        (inAccount(principal, ctx) || (principal === '*' && pinned))
      )
        return;
    }
    const shown =
      'known' in value ? JSON.stringify(value.known) : describe(value, 'an unresolvable principal');
    const why = 'known' in value && value.known === '*' ? ` (everyone: ${EVERYONE_PINNED})` : '';
    problems.push(`allows ${kind ? `${kind} principal ` : ''}${shown}${why}${sid}`);
  };
  const principal = statement.Principal;
  if (!isRecord(principal) || intrinsicOf(principal)) {
    for (const value of resolve(principal, ctx)) consider(undefined, value);
  } else {
    for (const [kind, node] of Object.entries(principal)) {
      for (const value of resolveList(node, ctx)) consider(kind, value);
    }
  }
  return problems;
}

function documentProblems(node: unknown, ctx: ResolveContext, excepted: Excepted): string[] {
  const intrinsic = intrinsicOf(node);
  // JSON text (AWS::Logs::ResourcePolicy, or a document built with Fn::Sub / Fn::Join).
  if (typeof node === 'string' || (intrinsic && intrinsic[0] !== 'Fn::If')) {
    return resolve(node, ctx).flatMap((value) => {
      if (!('known' in value))
        return [`has a policy document that cannot be read: ${describe(value, 'text')}`];
      try {
        return documentProblems(JSON.parse(value.known), ctx, excepted);
      } catch {
        return ['has a policy document that is not JSON'];
      }
    });
  }
  return resolveObjects(node).flatMap((doc) => {
    if ('unknown' in doc) return [`has a policy document that cannot be read: ${doc.unknown}`];
    return resolveObjects(doc.object.Statement).flatMap((statement) =>
      'unknown' in statement
        ? [`has a policy statement that cannot be read: ${statement.unknown}`]
        : statementProblems(statement.object, ctx, excepted),
    );
  });
}

/** Lambda-style permissions: one principal, and SourceAccount as the pinning condition. */
function permissionProblems(
  type: string,
  props: Record<string, unknown>,
  ctx: ResolveContext,
  excepted: Excepted,
): string[] {
  const pinned =
    props.SourceAccount !== undefined && alwaysIs(resolve(props.SourceAccount, ctx), ctx.accountId);
  // A function URL without auth is a public HTTP endpoint, as an API is: allowed, for that action only.
  const publicUrl =
    type === 'AWS::Lambda::Permission' &&
    alwaysIs(resolve(props.Action, ctx), 'lambda:InvokeFunctionUrl') &&
    alwaysIs(resolve(props.FunctionUrlAuthType, ctx), 'NONE');
  return resolve(props.Principal, ctx).flatMap((value) => {
    if ('known' in value) {
      const principal = value.known;
      if (excepted(principal) || isServicePrincipal(principal) || inAccount(principal, ctx)) return [];
      if (principal === '*' && (pinned || publicUrl)) return [];
    }
    const shown =
      'known' in value ? JSON.stringify(value.known) : describe(value, 'an unresolvable principal');
    const why =
      'known' in value && value.known === '*'
        ? ' (everyone: SourceAccount is not the target account, and it is not a public function URL)'
        : '';
    return [`allows principal ${shown}${why}`];
  });
}

/** What the resource's policy lets in from outside the target account, one line per principal. */
export function resourcePolicyProblems(
  type: string,
  props: Record<string, unknown>,
  ctx: ResolveContext,
  excepted: Excepted,
): string[] {
  const problems: string[] = [];
  for (const path of RESOURCE_POLICIES[type] ?? []) {
    let node: unknown = props;
    for (const key of path) node = isRecord(node) ? node[key] : undefined;
    if (node === undefined) continue;
    // An event bus policy holds one statement, not a document.
    problems.push(
      ...(type === 'AWS::Events::EventBusPolicy'
        ? documentProblems({ Statement: node }, ctx, excepted)
        : documentProblems(node, ctx, excepted)),
    );
  }
  if (PRINCIPAL_PERMISSIONS.includes(type) && props.Principal !== undefined) {
    problems.push(...permissionProblems(type, props, ctx, excepted));
  }
  return problems;
}
