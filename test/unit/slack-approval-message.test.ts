import { describe, expect, it } from 'vitest';
import { painter } from '#local/cli/format.ts';
import { deploymentSchema } from '#local/cli/schemas.ts';
import { renderStatus } from '#local/cli/views.ts';
import type { ChatLinks } from '#shared/chat/ports.ts';
import { iamInventoryLines } from '#shared/deployments/approval.ts';
import type { IamEntry, IamInventory } from '#shared/template-policy/inventory.ts';
import type { ChangeSetSummary, Deployment } from '#shared/types.ts';
import { approvalMessage, escapeText } from '../../functions/slack/messages.ts';

/**
 * The approval request is what a reviewer reads before a change set runs: text from the template (IAM
 * actions and resources, resource types, why it is reviewed) must show as it is, never restyled by mrkdwn.
 */

const links: ChatLinks = { status: (id) => `http://127.0.0.1:3000/deployments/${id}` };
const now = new Date('2026-03-01T12:05:00.000Z');
const ID = '01JAPPROVAL000000000000001';

const entry = (id: string, actions: string[], overrides: Partial<IamEntry> = {}): IamEntry => ({
  id,
  type: 'AWS::IAM::Role',
  kind: 'role',
  principals: ['service lambda.amazonaws.com'],
  actions,
  managedPolicies: [],
  attachedTo: [],
  wildcards: [],
  ...overrides,
});

const inventoryOf = (entries: IamEntry[]): IamInventory => ({
  roles: entries.length,
  actions: entries.reduce((n, e) => n + e.actions.length, 0),
  wildcards: entries.reduce((n, e) => n + e.wildcards.length, 0),
  principals: entries.length,
  entries,
  omitted: 0,
});

const summaryOf = (overrides: Partial<ChangeSetSummary>): ChangeSetSummary => ({
  changeSetArn: 'arn:aws:cloudformation:eu-west-1:111111111111:changeSet/cs/1',
  changeSetId: 'cs',
  added: [],
  modified: [],
  removed: [],
  iam: [],
  broadening: [],
  ...overrides,
});

const awaiting = (summary: ChangeSetSummary): Deployment => ({
  deploymentId: ID,
  application: 'hello-world',
  environment: 'prod',
  ref: 'main',
  requester: { type: 'slack', teamId: 'T1', userId: 'U1', userName: 'alice' } as Deployment['requester'],
  trigger: 'chat',
  dryRun: false,
  status: 'RUNNING',
  phase: 'AWAITING_APPROVAL',
  requestedAt: '2026-03-01T12:00:00.000Z',
  updatedAt: '2026-03-01T12:01:00.000Z',
  approval: { mode: 'required', state: 'PENDING', expiresAt: '2026-03-01T13:00:00.000Z' },
  changeSetSummary: summary,
});

type Block = { type: string; text?: { type: string; text: string }; fields?: { text: string }[] };
const sectionTexts = (deployment: Deployment): string[] =>
  (approvalMessage(deployment, { links, now }).blocks as Block[])
    .filter((b) => b.type === 'section' && b.text)
    .map((b) => b.text?.text ?? '');

/** The section that starts with a heading, e.g. `*IAM in this change set*`. */
function sectionUnder(deployment: Deployment, heading: string): string {
  const text = sectionTexts(deployment).find((t) => t.startsWith(heading));
  if (text === undefined) throw new Error(`no section under ${heading}`);
  return text;
}

/**
 * The text between ``` fences, split the way Slack reads it: the odd pieces are preformatted (no bold,
 * italics, strike or inline code inside), the even ones are mrkdwn.
 */
function split(text: string): { fenced: string[]; outside: string[] } {
  const pieces = text.split('```');
  return {
    fenced: pieces.filter((_, i) => i % 2 === 1),
    outside: pieces.filter((_, i) => i % 2 === 0),
  };
}

const HOSTILE_ACTIONS = ['s3:*', 's3:Get*', 'dynamodb:*_item_*', 'sqs:~Send~', 'sns:`Publish`'];
const hostile = awaiting(
  summaryOf({
    broadening: ['IAM: role *Deployer* gets s3:* on arn:aws:s3:::bucket/*', 'adds access: `My_Role_` ~x~'],
    iamInventory: inventoryOf([
      entry('DeployerRole', HOSTILE_ACTIONS, {
        wildcards: ['action s3:*', 'Resource arn:aws:s3:::bucket/*'],
      }),
    ]),
    added: [{ action: 'Add', logicalId: 'Thing', resourceType: 'Custom::_Hidden_Thing_' }],
  }),
);

describe('the approval request shows template text as it is (mrkdwn cannot restyle it)', () => {
  it('puts every IAM inventory line, `*` `_` `~` and backticks included, verbatim inside one code block', () => {
    const text = sectionUnder(hostile, '*IAM in this change set*');
    const { fenced, outside } = split(text);
    expect(fenced).toHaveLength(1);
    const lines = fenced[0]?.split('\n') ?? [];
    for (const line of iamInventoryLines(hostile.changeSetSummary as ChangeSetSummary)) {
      expect(lines).toContain(escapeText(line));
    }
    // Every hostile action is there with its characters, backtick included.
    for (const action of HOSTILE_ACTIONS) expect(fenced[0]).toContain(action);
    // Nothing from the template is left in the styled part of the section.
    expect(outside.join('')).not.toMatch(/s3:|DeployerRole|Publish/);
  });

  it('puts the reasons for the review verbatim inside a code block', () => {
    const text = sectionUnder(hostile, '*Why a review*');
    const { fenced, outside } = split(text);
    expect(fenced).toHaveLength(1);
    for (const reason of hostile.changeSetSummary?.broadening ?? []) {
      expect(fenced[0]?.split('\n')).toContain(escapeText(reason));
    }
    expect(outside.join('')).not.toMatch(/Deployer|My_Role_/);
  });

  it('cannot close a code block from inside: no run of three backticks in template text survives', () => {
    const breakout = awaiting(
      summaryOf({
        broadening: ['```\n*bold* <!channel>'],
        iamInventory: inventoryOf([entry('Role', ['s3:```*', 'sqs:``'])]),
      }),
    );
    for (const heading of ['*Why a review*', '*IAM in this change set*']) {
      const text = sectionUnder(breakout, heading);
      expect(split(text).fenced).toHaveLength(1);
      expect(text).not.toContain('<!channel>');
    }
  });

  it('shows a resource type as inline code, so `_` or `*` in a custom type styles nothing', () => {
    const text = sectionUnder(hostile, '*Change set*');
    expect(text).toContain('+ `Thing` `Custom::_Hidden_Thing_`');
  });
});

describe('the approval request stays within Slack limits with a huge inventory', () => {
  const huge = awaiting(
    summaryOf({
      broadening: Array.from({ length: 40 }, (_, i) => `IAM: role R${i} gets ${'s3:*'.repeat(100)}`),
      iamInventory: inventoryOf(
        Array.from({ length: 60 }, (_, i) =>
          entry(
            `Role${i}_*`,
            Array.from({ length: 12 }, (_, j) => `service${j}:Action_${'x'.repeat(60)}*`),
          ),
        ),
      ),
    }),
  );

  it('keeps every section within 3000 characters and every code block closed', () => {
    const texts = sectionTexts(huge);
    for (const text of texts) {
      expect(text.length).toBeLessThanOrEqual(3000);
      expect(text.split('```').length % 2).toBe(1);
    }
    expect(split(sectionUnder(huge, '*IAM in this change set*')).fenced).toHaveLength(1);
    expect(split(sectionUnder(huge, '*Why a review*')).fenced).toHaveLength(1);
  });

  it('cuts only whole lines and counts the rest in a pointer to where all of it is', () => {
    const all = iamInventoryLines(huge.changeSetSummary as ChangeSetSummary).map(escapeText);
    const text = sectionUnder(huge, '*IAM in this change set*');
    const shown =
      split(text)
        .fenced[0]?.split('\n')
        .filter((line) => line !== '') ?? [];
    expect(shown).toEqual(all.slice(0, shown.length));
    const more = all.length - shown.length;
    expect(more).toBeGreaterThan(0);
    expect(split(text).outside.at(-1)).toContain(
      `… and ${more} more lines: \`crossdeploy status ${ID}\` shows all`,
    );
  });
});

describe('the approval request says where the rest is when it cuts', () => {
  it('names `crossdeploy status <id>` for IAM lines beyond the first 15', () => {
    const deployment = awaiting(
      summaryOf({
        iamInventory: inventoryOf(
          Array.from({ length: 10 }, (_, i) => entry(`Role${i}`, [`s3:GetObject${i}`])),
        ),
      }),
    );
    const all = iamInventoryLines(deployment.changeSetSummary as ChangeSetSummary);
    expect(all.length).toBeGreaterThan(15);
    const text = sectionUnder(deployment, '*IAM in this change set*');
    expect(
      split(text)
        .fenced[0]?.split('\n')
        .filter((l) => l !== ''),
    ).toHaveLength(15);
    expect(text).toContain(`… and ${all.length - 15} more lines: \`crossdeploy status ${ID}\` shows all`);
  });

  it('names the API record for reasons beyond the first 8 (the CLI status does not list reasons)', () => {
    const reasons = Array.from({ length: 11 }, (_, i) => `removes Bucket${i} (AWS::S3::Bucket)`);
    const text = sectionUnder(awaiting(summaryOf({ broadening: reasons })), '*Why a review*');
    expect(
      split(text)
        .fenced[0]?.split('\n')
        .filter((l) => l !== ''),
    ).toEqual(reasons.slice(0, 8));
    expect(text).toContain(
      `… and 3 more: \`GET /deployments/${ID}\` lists all (\`changeSetSummary.broadening\`)`,
    );
  });

  it('adds no pointer when everything fits', () => {
    const texts = sectionTexts(hostile).join('\n');
    expect(texts).not.toContain('more lines');
    expect(texts).not.toContain('lists all');
  });
});

describe('the approval request cuts nothing silently', () => {
  it('shows a single line longer than a section cut, marked, inside a closed code block', () => {
    const reason = `IAM: ${'s3:*'.repeat(1000)}`;
    const text = sectionUnder(awaiting(summaryOf({ broadening: [reason] })), '*Why a review*');
    expect(text.length).toBeLessThanOrEqual(3000);
    const { fenced } = split(text);
    expect(fenced).toHaveLength(1);
    expect(fenced[0]).toContain(`${reason.slice(0, 100)}`);
    expect(fenced[0]?.trimEnd().endsWith('…')).toBe(true);
  });

  it('names the API record for resource changes beyond the first 12', () => {
    const added = Array.from({ length: 14 }, (_, i) => ({
      action: 'Add' as const,
      logicalId: `Queue${i}`,
      resourceType: 'AWS::SQS::Queue',
    }));
    const text = sectionUnder(awaiting(summaryOf({ added })), '*Change set*');
    expect(text).toContain(`… and 2 more: \`GET /deployments/${ID}\` lists all (\`changeSetSummary\`)`);
  });
});

describe('the pointers are true', () => {
  it('`crossdeploy status` prints every IAM line the approval request leaves out', () => {
    const deployment = awaiting(
      summaryOf({
        iamInventory: inventoryOf(
          Array.from({ length: 30 }, (_, i) => entry(`Role${i}`, [`s3:GetObject${i}`])),
        ),
      }),
    );
    // The record as the API sends it, read by the CLI as it reads GET /deployments/{id}.
    const body = deploymentSchema.parse(JSON.parse(JSON.stringify(deployment)));
    const printed = renderStatus(body, [], {
      paint: painter(false),
      now: now.getTime(),
      timeZone: 'UTC',
      decorated: false,
    }).map((line) => line.trim());
    const all = iamInventoryLines(deployment.changeSetSummary as ChangeSetSummary);
    expect(sectionUnder(deployment, '*IAM in this change set*')).toContain('more lines');
    for (const line of all) expect(printed).toContain(line.trim());
  });
});

describe('the change set section of the approval request', () => {
  it('shows only whole lines within 3000 characters, however long the logical ids, and counts the rest', () => {
    const modified = Array.from({ length: 12 }, (_, i) => ({
      action: 'Modify' as const,
      logicalId: `${'Q'.repeat(250)}${String(i).padStart(5, '0')}`,
      resourceType: 'AWS::SQS::Queue',
      replacement: 'True' as const,
    }));
    const text = sectionUnder(awaiting(summaryOf({ modified })), '*Change set*');
    expect(text.length).toBeLessThanOrEqual(3000);
    const lines = text.split('\n').slice(1);
    const shown = lines.filter((line) => line.startsWith('~ '));
    // Every line shown is whole: its inline code closed, its replacement mark there.
    for (const line of shown) {
      expect(line.split('`').length % 2).toBe(1);
      expect(line.endsWith('*(replacement)*')).toBe(true);
    }
    expect(shown.length).toBeGreaterThan(0);
    expect(lines.at(-1)).toBe(
      `… and ${12 - shown.length} more: \`GET /deployments/${ID}\` lists all (\`changeSetSummary\`)`,
    );
  });
});
