/**
 * The IAM inventory of a template (docs/approvals.md): every role with whom it trusts, every policy statement
 * that grants actions, managed policies, boundaries, IAM users and groups, and the resource policies the
 * rules read, with their principals. Where the rules of engine.ts refuse, this shows: an approver reads it
 * before a change set runs, and `on-broadening` compares it with the stack's current template so that only an
 * added or widened grant asks. Values are resolved by resolve.ts, as the rules resolve them.
 */
import { samPolicies } from './engine.ts';
import {
  describe,
  intrinsicOf,
  isRecord,
  mayAllow,
  partitionOf,
  type ResolveContext,
  resolve,
  resolveList,
  resolveObjects,
  type Value,
} from './resolve.ts';
import { ADMIN_MANAGED_POLICIES, PRINCIPAL_PERMISSIONS, RESOURCE_POLICIES } from './rules.ts';

export interface InventoryTarget {
  accountId: string;
  region: string;
  stackName: string;
  /** Registry parameter overrides, as `sam deploy` passes them. */
  parameterOverrides?: Readonly<Record<string, string>>;
}

/** One holder of access: a role, a standalone policy, a user or group, or a resource policy. */
export interface IamEntry {
  /** The logical id (a role SAM generates for a function: `<Function>Role`, as SAM names it). */
  id: string;
  type: string;
  kind: 'role' | 'policy' | 'identity' | 'resource-policy';
  /** Roles: whom the trust policy lets assume it; resource policies: whom they let in (`<kind> <value>`). */
  principals: string[];
  /** Actions granted (Allow, or an Effect that may be Allow), distinct and sorted; `NotAction <x>` for NotAction. */
  actions: string[];
  /** Managed policy ARNs (or SAM names) attached, and SAM policy templates (`SAM policy template <Name>`). */
  managedPolicies: string[];
  boundary?: string;
  /** A standalone policy: the roles, users and groups it attaches to. */
  attachedTo: string[];
  /** What an approver should look at twice: `action *`, `action iam:*`, `Resource *`, `NotAction`, admin policies. */
  wildcards: string[];
  /** Left out of `actions` / `principals` to keep the record small. */
  moreActions?: number;
  morePrincipals?: number;
}

/** The inventory with what the comparison with the stack needs (the keys are never stored). */
export interface FullIamInventory {
  entries: (IamEntry & {
    keys: { principals: string[]; grants: string[] };
    /**
     * Read exactly: no `Fn::If` or `Fn::Select` (both branches, or every item, are read on either side, so a
     * flipped condition compares equal) and nothing unresolved (whose reason reads the same whatever it is).
     */
    exact: boolean;
  })[];
}

/** As recorded on the deployment and in the CHANGE_SET_CREATED event: totals, then entries up to a size. */
export interface IamInventory {
  roles: number;
  /** Distinct actions over every entry. */
  actions: number;
  wildcards: number;
  principals: number;
  /** Entries with a wildcard first, then roles; cut at a size budget. */
  entries: IamEntry[];
  /** Entries left out by the size budget. */
  omitted: number;
}

const SAM_ROLE_TYPES: Record<string, string> = {
  'AWS::Serverless::Function': 'lambda.amazonaws.com',
  'AWS::Serverless::StateMachine': 'states.amazonaws.com',
};

const IDENTITY_TYPES = ['AWS::IAM::User', 'AWS::IAM::Group'];
const POLICY_TYPES = [
  'AWS::IAM::Policy',
  'AWS::IAM::ManagedPolicy',
  'AWS::IAM::RolePolicy',
  'AWS::IAM::UserPolicy',
  'AWS::IAM::GroupPolicy',
];

const shown = (value: Value): string => {
  if ('known' in value) return value.known;
  if ('resource' in value) return `<${value.resource}>`;
  return describe(value, '?');
};

/** `StringEquals sts:ExternalId, Bool aws:SecureTransport`: the condition's operators and keys, not its values. */
function conditionKeys(condition: unknown): string | undefined {
  if (!isRecord(condition)) return condition === undefined ? undefined : 'a condition that cannot be read';
  const keys = Object.entries(condition).flatMap(([operator, block]) =>
    isRecord(block) ? Object.keys(block).map((key) => (operator ? `${operator} ${key}` : key)) : [operator],
  );
  return keys.length > 0 ? keys.join(', ') : undefined;
}

const PRINCIPAL_KINDS: Record<string, string> = {
  AWS: 'account',
  Service: 'service',
  Federated: 'federated',
  CanonicalUser: 'canonical-user',
};

/** A statement's principals as `<kind> <value>`, plus the keys (with the condition's values) for comparison. */
function principalsOf(statement: Record<string, unknown>, ctx: ResolveContext, into: Collector): void {
  const condition = conditionKeys(statement.Condition);
  const fullCondition =
    statement.Condition === undefined ? '' : JSON.stringify(resolveDeep(statement.Condition, ctx));
  const add = (kind: string, value: Value, not: boolean) => {
    const text = shown(value);
    const everyone = text === '*' || not;
    const label = `${not ? 'NotPrincipal ' : ''}${everyone && !not ? '*' : `${kind} ${text}`}`;
    const displayed = condition ? `${label} (if ${condition})` : label;
    into.principals.add(displayed);
    // The condition's values count too: a changed account in aws:SourceAccount widens as much as a new one.
    into.principalKeys.add(`${displayed}\n${fullCondition}`);
    if (everyone) into.wildcards.add(not ? 'NotPrincipal' : 'principal *');
    if (!('known' in value) && !('resource' in value)) into.wildcards.add(`unresolvable principal`);
  };
  const not = statement.NotPrincipal !== undefined;
  const node = not ? statement.NotPrincipal : statement.Principal;
  if (!isRecord(node) || intrinsicOf(node)) {
    // A Lambda-style permission names one principal without its kind: a service, or an account.
    for (const value of resolve(node, ctx)) {
      add(
        'known' in value && /\.amazonaws\.com(\.cn)?$/.test(value.known) ? 'service' : 'account',
        value,
        not,
      );
    }
    return;
  }
  for (const [kind, values] of Object.entries(node)) {
    for (const value of resolveList(values, ctx)) add(PRINCIPAL_KINDS[kind] ?? kind, value, not);
  }
}

interface Collector {
  /** Action × resource pairs left for the whole template (shared by every entry's collector). */
  budget: { pairs: number };
  principals: Set<string>;
  principalKeys: Set<string>;
  actions: Set<string>;
  grants: Set<string>;
  managedPolicies: Set<string>;
  wildcards: Set<string>;
}

const collector = (budget: { pairs: number }): Collector => ({
  budget,
  principals: new Set(),
  principalKeys: new Set(),
  actions: new Set(),
  grants: new Set(),
  managedPolicies: new Set(),
  wildcards: new Set(),
});

/** Policy documents and their statements; a document may be JSON text built with Fn::Sub or Fn::Join. */
function statementsOf(
  node: unknown,
  ctx: ResolveContext,
  into: Collector,
): ({ statement: Record<string, unknown> } | { unknown: string })[] {
  const intrinsic = intrinsicOf(node);
  if (typeof node === 'string' || (intrinsic && intrinsic[0] !== 'Fn::If')) {
    return resolve(node, ctx).flatMap((value) => {
      if (!('known' in value)) return [{ unknown: `a policy document that cannot be read: ${shown(value)}` }];
      try {
        return statementsOf(JSON.parse(value.known) as unknown, ctx, into);
      } catch {
        return [{ unknown: 'a policy document that is not JSON' }];
      }
    });
  }
  return resolveObjects(node).flatMap((doc) => {
    if ('unknown' in doc) return [{ unknown: `a policy document that cannot be read: ${doc.unknown}` }];
    return resolveObjects(doc.object.Statement).map((s) =>
      'object' in s ? { statement: s.object } : { unknown: `a statement that cannot be read: ${s.unknown}` },
    );
  });
}

/** What an Allow statement grants: each action on each resource, wildcards flagged. */
function grantsOf(statement: Record<string, unknown>, ctx: ResolveContext, into: Collector): void {
  if (!mayAllow(statement, ctx)) return;
  const notAction = statement.NotAction !== undefined;
  const actions = resolveList(notAction ? statement.NotAction : statement.Action, ctx).map(shown);
  const granted = notAction ? [`NotAction ${actions.join(', ')}`] : actions;
  if (notAction) into.wildcards.add('NotAction');
  const notResource = statement.NotResource !== undefined;
  const resourceValues = resolveList(notResource ? statement.NotResource : statement.Resource, ctx);
  const resources = resourceValues.map((value) => `${notResource ? 'NotResource ' : ''}${shown(value)}`);
  if (notResource) into.wildcards.add('NotResource');
  if (resourceValues.some((value) => 'known' in value && value.known === '*'))
    into.wildcards.add('Resource *');
  const condition =
    statement.Condition === undefined ? '' : ` if ${JSON.stringify(resolveDeep(statement.Condition, ctx))}`;
  const on = resources.length > 0 ? resources : ['(none)'];
  // Every action on every resource, unless that multiplies out past a bound (a template of 1 MB could ask
  // for billions): then actions and resources are compared each on their own, a new one of either widening.
  const count = granted.length * on.length;
  const pairs = count <= MAX_PAIRS_PER_STATEMENT && count <= into.budget.pairs;
  if (pairs) into.budget.pairs -= count;
  for (const action of granted) {
    into.actions.add(action);
    if (action.startsWith('? (')) into.wildcards.add('unresolvable action');
    else if (!notAction && (action.includes('*') || action.includes('?')))
      into.wildcards.add(`action ${action}`);
    if (pairs) for (const resource of on) into.grants.add(`${action} on ${resource}${condition}`);
    else into.grants.add(`${action} on its resources${condition}`);
  }
  if (!pairs) for (const resource of on) into.grants.add(`its actions on ${resource}${condition}`);
}

const MAX_PAIRS_PER_STATEMENT = 500;
/** Pairs for a whole template: past it, each statement's actions and resources are compared on their own. */
const MAX_PAIRS_PER_TEMPLATE = 50_000;

function managedPoliciesOf(node: unknown, ctx: ResolveContext, into: Collector): void {
  const awsManaged = `arn:${ctx.partition}:iam::aws:policy/`;
  for (const value of resolveList(node, ctx)) {
    const text = shown(value);
    into.managedPolicies.add(text);
    into.grants.add(`managed ${text}`);
    const name = text.startsWith(awsManaged) ? text.slice(text.lastIndexOf('/') + 1) : text;
    const admin = ADMIN_MANAGED_POLICIES.find((a) => a.toLowerCase() === name.toLowerCase());
    if (admin) into.wildcards.add(admin);
    if (!('known' in value) && !('resource' in value)) into.wildcards.add('unresolvable managed policy');
  }
}

function documents(nodes: unknown[], ctx: ResolveContext, into: Collector): void {
  for (const node of nodes) {
    for (const item of statementsOf(node, ctx, into)) {
      if ('statement' in item) grantsOf(item.statement, ctx, into);
      else {
        into.actions.add(`? (${item.unknown})`);
        into.wildcards.add('unreadable policy');
      }
    }
  }
}

function trust(node: unknown, ctx: ResolveContext, into: Collector): void {
  for (const item of statementsOf(node, ctx, into)) {
    if ('unknown' in item) {
      into.principals.add(`? (${item.unknown})`);
      into.principalKeys.add(`? (${item.unknown})`);
      into.wildcards.add('unreadable trust policy');
    } else if (mayAllow(item.statement, ctx)) principalsOf(item.statement, ctx, into);
  }
}

/** The template's IAM, read as the rules read it (SAM shorthand included, for templates before the transform). */
export function inventoryTemplate(template: unknown, target: InventoryTarget): FullIamInventory {
  const resources = isRecord(template) && isRecord(template.Resources) ? template.Resources : {};
  const ctx: ResolveContext = {
    resources: Object.fromEntries(
      Object.entries(resources).map(([id, r]) => [id, isRecord(r) ? r : {}]),
    ) as ResolveContext['resources'],
    parameters: (isRecord(template) && isRecord(template.Parameters)
      ? template.Parameters
      : {}) as ResolveContext['parameters'],
    mappings: isRecord(template) && isRecord(template.Mappings) ? template.Mappings : {},
    overrides: target.parameterOverrides ?? {},
    accountId: target.accountId,
    region: target.region,
    partition: partitionOf(target.region),
    stackName: target.stackName,
    showResources: true,
  };
  const globals =
    isRecord(template) && isRecord(template.Globals) && isRecord(template.Globals.Function)
      ? template.Globals.Function
      : {};
  const entries: FullIamInventory['entries'] = [];
  const budget = { pairs: MAX_PAIRS_PER_TEMPLATE };
  const push = (
    id: string,
    type: string,
    kind: IamEntry['kind'],
    into: Collector,
    extra: {
      boundary?: unknown;
      attachedTo?: unknown;
      read?: unknown;
      others?: Record<string, unknown>;
    } = {},
  ) => {
    // What else decides the access (a role's MaxSessionDuration, the queues a queue policy applies to): any
    // change of it counts as widening.
    const others = Object.entries(extra.others ?? {})
      .filter(([key]) => !UNRELATED_PROPERTIES.includes(key))
      .map(([key, value]) => `property ${key} = ${JSON.stringify(resolveDeep(value, ctx))}`);
    const boundary =
      extra.boundary === undefined ? [] : resolve(extra.boundary, ctx).map((value) => shown(value));
    const attachedTo = resolveList(extra.attachedTo, ctx).map((value) =>
      'resource' in value ? value.resource : shown(value),
    );
    entries.push({
      id,
      type,
      kind,
      principals: [...into.principals].sort(),
      actions: [...into.actions].sort(),
      managedPolicies: [...into.managedPolicies],
      ...(boundary.length > 0 ? { boundary: boundary.join(' | ') } : {}),
      attachedTo: [...new Set(attachedTo)].sort(),
      wildcards: [...into.wildcards].sort(),
      keys: {
        principals: [...into.principalKeys].sort(),
        grants: [...into.grants, ...attachedTo.map((holder) => `attached to ${holder}`), ...others].sort(),
      },
      exact: isExact(extra.read, [
        ...into.principalKeys,
        ...into.grants,
        ...boundary,
        ...attachedTo,
        ...others,
      ]),
    });
  };

  for (const [id, resource] of Object.entries(resources)) {
    if (!isRecord(resource) || typeof resource.Type !== 'string') continue;
    const type = resource.Type;
    const props = isRecord(resource.Properties) ? resource.Properties : {};
    const into = collector(budget);
    if (type === 'AWS::IAM::Role') {
      trust(props.AssumeRolePolicyDocument, ctx, into);
      managedPoliciesOf(props.ManagedPolicyArns, ctx, into);
      documents(
        resolveObjects(props.Policies ?? []).map((p) => ('object' in p ? p.object.PolicyDocument : p)),
        ctx,
        into,
      );
      const { AssumeRolePolicyDocument, ManagedPolicyArns, Policies, PermissionsBoundary, ...others } = props;
      push(id, type, 'role', into, { boundary: props.PermissionsBoundary, read: props, others });
    } else if (IDENTITY_TYPES.includes(type)) {
      managedPoliciesOf(props.ManagedPolicyArns, ctx, into);
      documents(
        resolveObjects(props.Policies ?? []).map((p) => ('object' in p ? p.object.PolicyDocument : p)),
        ctx,
        into,
      );
      into.wildcards.add('long-lived IAM identity');
      push(id, type, 'identity', into, { boundary: props.PermissionsBoundary, read: props });
    } else if (POLICY_TYPES.includes(type)) {
      documents([props.PolicyDocument], ctx, into);
      const holders = [
        props.Roles,
        props.Users,
        props.Groups,
        props.RoleName,
        props.UserName,
        props.GroupName,
      ]
        .filter((node) => node !== undefined)
        .flatMap((node) => (Array.isArray(node) ? node : [node]));
      const { PolicyDocument, Roles, Users, Groups, RoleName, UserName, GroupName, ...others } = props;
      push(id, type, 'policy', into, { attachedTo: holders, read: props, others });
    } else if (SAM_ROLE_TYPES[type] !== undefined) {
      // Before the transform (local mode's built template): the role SAM will generate, named as SAM names it.
      const effective = type === 'AWS::Serverless::Function' ? { ...globals, ...props } : props;
      if (effective.Role !== undefined) continue;
      if (type === 'AWS::Serverless::Function' && effective.AssumeRolePolicyDocument !== undefined) {
        trust(effective.AssumeRolePolicyDocument, ctx, into);
      } else {
        const service = `service ${SAM_ROLE_TYPES[type]}`;
        into.principals.add(service);
        into.principalKeys.add(`${service}\n`);
      }
      const docs: unknown[] = [];
      const arns: unknown[] = [];
      const templates: string[] = [];
      samPolicies(props.Policies, docs, arns, templates);
      managedPoliciesOf(arns, ctx, into);
      for (const name of templates) {
        into.managedPolicies.add(`SAM policy template ${name}`);
        into.grants.add(`template ${name}`);
      }
      documents(docs, ctx, into);
      push(`${id}Role`, 'AWS::IAM::Role', 'role', into, {
        boundary: effective.PermissionsBoundary,
        read: effective,
      });
    } else if (RESOURCE_POLICIES[type] !== undefined || PRINCIPAL_PERMISSIONS.includes(type)) {
      for (const path of RESOURCE_POLICIES[type] ?? []) {
        let node: unknown = props;
        for (const key of path) node = isRecord(node) ? node[key] : undefined;
        if (node === undefined) continue;
        const doc = type === 'AWS::Events::EventBusPolicy' ? { Statement: node } : node;
        for (const item of statementsOf(doc, ctx, into)) {
          if ('unknown' in item) {
            into.principals.add(`? (${item.unknown})`);
            into.wildcards.add('unreadable policy');
          } else if (mayAllow(item.statement, ctx)) {
            principalsOf(item.statement, ctx, into);
            grantsOf(item.statement, ctx, into);
          }
        }
      }
      if (PRINCIPAL_PERMISSIONS.includes(type) && props.Principal !== undefined) {
        const conditions = ['SourceAccount', 'SourceArn', 'PrincipalOrgID', 'FunctionUrlAuthType'].filter(
          (key) => props[key] !== undefined,
        );
        principalsOf(
          {
            Principal: props.Principal,
            ...(conditions.length > 0
              ? { Condition: { '': Object.fromEntries(conditions.map((key) => [key, props[key]])) } }
              : {}),
          },
          ctx,
          into,
        );
        grantsOf({ Effect: 'Allow', Action: props.Action ?? '?', Resource: '(this resource)' }, ctx, into);
      }
      if (into.principals.size === 0 && into.actions.size === 0) continue;
      // A policy resource of its own names what it applies to (Queues, Bucket, FunctionName, ...): part of it.
      const documentPaths = (RESOURCE_POLICIES[type] ?? []).map((path) => path[0]);
      const others = SUBJECT_OF_ITS_OWN.includes(type)
        ? Object.fromEntries(Object.entries(props).filter(([key]) => !documentPaths.includes(key)))
        : {};
      push(id, type, 'resource-policy', into, { read: props, others });
    }
  }
  return { entries };
}

/**
 * A condition or property with its intrinsics resolved, for comparing: the text CloudFormation will pass on
 * (alternatives joined with ` | `), so a parameter that changes it changes the comparison too.
 */
function resolveDeep(node: unknown, ctx: ResolveContext): unknown {
  if (typeof node === 'string' || intrinsicOf(node)) return resolve(node, ctx).map(shown).join(' | ');
  if (Array.isArray(node)) return node.map((item) => resolveDeep(item, ctx));
  if (isRecord(node))
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, resolveDeep(v, ctx)]));
  return node;
}

/** Properties that say nothing about access. */
const UNRELATED_PROPERTIES = ['Tags', 'Description', 'PolicyName'];

/** Resource policies that are resources of their own, applied to what their other properties name. */
const SUBJECT_OF_ITS_OWN = [
  'AWS::S3::BucketPolicy',
  'AWS::SQS::QueuePolicy',
  'AWS::SNS::TopicPolicy',
  'AWS::SecretsManager::ResourcePolicy',
  'AWS::Logs::ResourcePolicy',
  'AWS::Events::EventBusPolicy',
  'AWS::Lambda::Permission',
  'AWS::Lambda::LayerVersionPermission',
];

/**
 * Whether the values were read exactly: not when an `Fn::If` or `Fn::Select` was read as all its branches, a
 * value stayed unresolved (its reason reads the same whatever it is), or an intrinsic stayed as written in a
 * condition or property (the same text, whatever the parameter it names holds).
 */
function isExact(read: unknown, values: string[]): boolean {
  const text = JSON.stringify(read ?? {});
  return (
    !text.includes('"Fn::If"') &&
    !text.includes('"Fn::Select"') &&
    !values.some((v) => v.includes('? (') || v.includes('"Fn::') || v.includes('{"Ref"'))
  );
}

/**
 * The logical ids whose access the comparison judges: roles, policies and resource policies read exactly. Users
 * and groups have more to them than their policies (login profiles, access keys), so their changes ask by type,
 * as do entries not read exactly.
 */
export function comparedIds(full: FullIamInventory): string[] {
  return full.entries.filter((e) => e.kind !== 'identity' && e.exact).map((e) => e.id);
}

/** The size budget of the recorded inventory: well inside DynamoDB's 400 KB item with the rest of the record. */
const INVENTORY_BUDGET_BYTES = 48 * 1024;
const MAX_ACTIONS_PER_ENTRY = 40;
const MAX_PRINCIPALS_PER_ENTRY = 20;
const MAX_TEXT = 300;

/**
 * Template text goes on the record and on to terminals and chat: control characters (an escape sequence in a
 * principal or an action) become `?`, and long values are cut.
 */
const clip = (raw: string) => {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
  const text = raw.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  return text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT - 1)}…` : text;
};

/** Totals over everything, then the entries (wildcards first, roles next) up to the size budget. */
export function compactInventory(full: FullIamInventory): IamInventory {
  const actions = new Set(full.entries.flatMap((e) => e.actions));
  const ranked = [...full.entries].sort(
    (a, b) =>
      Number(b.wildcards.length > 0) - Number(a.wildcards.length > 0) ||
      Number(b.kind === 'role') - Number(a.kind === 'role') ||
      a.id.localeCompare(b.id),
  );
  const entries: IamEntry[] = [];
  let size = 0;
  for (const { keys: _keys, exact: _exact, ...entry } of ranked) {
    const small: IamEntry = {
      ...entry,
      id: clip(entry.id),
      type: clip(entry.type),
      principals: entry.principals.slice(0, MAX_PRINCIPALS_PER_ENTRY).map(clip),
      actions: entry.actions.slice(0, MAX_ACTIONS_PER_ENTRY).map(clip),
      managedPolicies: entry.managedPolicies.slice(0, MAX_PRINCIPALS_PER_ENTRY).map(clip),
      attachedTo: entry.attachedTo.slice(0, MAX_PRINCIPALS_PER_ENTRY).map(clip),
      wildcards: entry.wildcards.slice(0, MAX_PRINCIPALS_PER_ENTRY).map(clip),
      ...(entry.boundary ? { boundary: clip(entry.boundary) } : {}),
      ...(entry.actions.length > MAX_ACTIONS_PER_ENTRY
        ? { moreActions: entry.actions.length - MAX_ACTIONS_PER_ENTRY }
        : {}),
      ...(entry.principals.length > MAX_PRINCIPALS_PER_ENTRY
        ? { morePrincipals: entry.principals.length - MAX_PRINCIPALS_PER_ENTRY }
        : {}),
    };
    size += JSON.stringify(small).length;
    if (size > INVENTORY_BUDGET_BYTES) break;
    entries.push(small);
  }
  return {
    roles: full.entries.filter((e) => e.kind === 'role').length,
    actions: actions.size,
    wildcards: full.entries.reduce((n, e) => n + e.wildcards.length, 0),
    principals: full.entries.reduce((n, e) => n + e.principals.length, 0),
    entries,
    omitted: full.entries.length - entries.length,
  };
}

/**
 * What the change set's template adds or widens compared with the stack's: a new role, policy, identity or
 * resource policy; a principal (or a principal whose condition changed); an action on a resource; a managed
 * policy or attachment; a boundary changed or removed. Without a stack (`before` undefined) everything is
 * added. Narrowing (something removed) asks nothing.
 */
export function inventoryWidening(before: FullIamInventory | undefined, after: FullIamInventory): string[] {
  const found: Widening[] = [];
  const previous = new Map((before?.entries ?? []).map((e) => [`${e.kind}\n${e.id}`, e]));
  for (const entry of after.entries) {
    const { id } = entry;
    const old = previous.get(`${entry.kind}\n${id}`);
    if (!old) {
      found.push({ change: 'adds', id, entryKind: entry.kind });
      continue;
    }
    const oldPrincipals = new Set(old.keys.principals);
    for (const key of entry.keys.principals.filter((k) => !oldPrincipals.has(k))) {
      found.push({ change: 'trusts', id, principal: key.split('\n')[0] ?? key });
    }
    const oldGrants = new Set(old.keys.grants);
    for (const grant of entry.keys.grants.filter((key) => !oldGrants.has(key))) {
      if (grant.startsWith('managed '))
        found.push({ change: 'attaches', id, policy: grant.slice('managed '.length) });
      else if (grant.startsWith('template ')) {
        found.push({ change: 'sam-template', id, template: grant.slice('template '.length) });
      } else if (grant.startsWith('attached to ')) {
        found.push({ change: 'attached', id, holder: grant.slice('attached to '.length) });
      } else if (grant.startsWith('property ')) {
        found.push({
          change: 'property',
          id,
          property: grant.slice('property '.length).split(' = ')[0] ?? '',
        });
      } else found.push({ change: 'grants', id, grant });
    }
    if (old.boundary !== undefined && entry.boundary === undefined) {
      found.push({ change: 'boundary-lost', id });
    } else if (old.boundary !== entry.boundary) found.push({ change: 'boundary-changed', id });
  }
  // The most telling reasons lead; within a rank they keep the order found (sort is stable). The reasons go on
  // the record, so they are bounded like the inventory.
  const sorted = found.sort((a, b) => RANK[a.change] - RANK[b.change]).map((w) => clip(wording(w)));
  return sorted.length > MAX_REASONS
    ? [...sorted.slice(0, MAX_REASONS), `… and ${sorted.length - MAX_REASONS} more IAM changes`]
    : sorted;
}

const MAX_REASONS = 50;

/** One thing the change set adds or widens, kept as data until it is ranked; worded once, by `wording`. */
type Widening =
  | { change: 'adds'; id: string; entryKind: IamEntry['kind'] }
  | { change: 'trusts'; id: string; principal: string }
  | { change: 'attaches'; id: string; policy: string }
  | { change: 'sam-template'; id: string; template: string }
  | { change: 'grants'; id: string; grant: string }
  | { change: 'attached'; id: string; holder: string }
  | { change: 'property'; id: string; property: string }
  | { change: 'boundary-lost' | 'boundary-changed'; id: string };

/** New entries first, then principals, then managed policies and SAM policy templates, then grants. */
const RANK: Record<Widening['change'], number> = {
  adds: 0,
  trusts: 1,
  attaches: 2,
  'sam-template': 2,
  grants: 3,
  attached: 3,
  property: 4,
  'boundary-lost': 4,
  'boundary-changed': 4,
};

const NOUN: Record<IamEntry['kind'], string> = {
  role: 'IAM role',
  policy: 'IAM policy',
  identity: 'IAM identity',
  'resource-policy': 'resource policy',
};

function wording(w: Widening): string {
  switch (w.change) {
    case 'adds':
      return `adds ${NOUN[w.entryKind]} ${w.id}`;
    case 'trusts':
      return `${w.id} trusts ${w.principal}`;
    case 'attaches':
      return `${w.id} attaches ${w.policy}`;
    case 'sam-template':
      return `${w.id} adds SAM policy template ${w.template}`;
    case 'grants':
      return `${w.id} grants ${w.grant}`;
    case 'attached':
      return `${w.id} is now attached to ${w.holder}`;
    case 'property':
      return `${w.id} changes ${w.property}`;
    case 'boundary-lost':
      return `${w.id} loses its permissions boundary`;
    case 'boundary-changed':
      return `${w.id} changes its permissions boundary`;
  }
}
