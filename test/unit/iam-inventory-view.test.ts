import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { painter } from '#local/cli/format.ts';
import { describeEvents } from '#local/cli/progress.ts';
import { deploymentSchema } from '#local/cli/schemas.ts';
import { renderStatus } from '#local/cli/views.ts';
import { describeChangeSet, iamInventoryLines, summariseChangeSet } from '#shared/deployments/approval.ts';
import { parseTemplateText } from '#shared/template-policy/cfn-yaml.ts';
import { compactInventory, inventoryTemplate } from '#shared/template-policy/inventory.ts';

const target = { accountId: '111111111111', region: 'eu-west-1', stackName: 'shop-prod' };
const hostile = parseTemplateText(
  readFileSync(new URL('../fixtures/templates/hostile/iam-inventory.yaml', import.meta.url), 'utf8'),
);
const review = (template: unknown) => {
  const full = inventoryTemplate(template, target);
  return { inventory: compactInventory(full), widening: [], covered: [] };
};
const summary = (template: unknown = hostile) =>
  summariseChangeSet(
    {
      changeSetArn: 'arn:aws:cloudformation:eu-west-1:111111111111:changeSet/x/y',
      changeSetId: 'x',
      changes: [],
    },
    [],
    review(template),
  );

describe('the IAM inventory as text (iamInventoryLines: CLI, API clients, chat)', () => {
  it('adds roles, actions and wildcards to the one-line summary', () => {
    expect(describeChangeSet(summary())).toBe('+0 ~0 -0, IAM: 4 roles, 6 actions, 10 wildcards');
  });

  it('shows each role with whom it trusts and what it may do, wildcards marked', () => {
    const lines = iamInventoryLines(summary());
    expect(lines[0]).toBe('IAM: 4 roles, 6 actions, 10 wildcards');
    const admin = lines.indexOf('role AdminRole');
    expect(lines.slice(admin, admin + 4)).toEqual([
      'role AdminRole',
      '  trusts: service lambda.amazonaws.com',
      '  actions: *',
      '  ! Resource *, action *',
    ]);
    expect(lines).toContain('  trusts: * (if StringEquals sts:ExternalId)');
    expect(lines).toContain('policy EverythingButIam (AWS::IAM::Policy), attached to PartnerRole');
    const partner = lines.indexOf('role PartnerRole');
    expect(lines.slice(partner, partner + 3)).toEqual([
      'role PartnerRole',
      '  trusts: account arn:aws:iam::999999999999:root',
      '  policies: EverythingButIam',
    ]);
    expect(lines).toContain('  lets in: account 888888888888');
  });

  it('says how many entries the record left out of a template with 200 roles', () => {
    const resources: Record<string, unknown> = {};
    for (let i = 0; i < 200; i++) {
      resources[`Role${i}`] = {
        Type: 'AWS::IAM::Role',
        Properties: {
          Policies: [
            {
              PolicyName: 'p',
              PolicyDocument: {
                Statement: [
                  {
                    Effect: 'Allow',
                    Action: Array.from({ length: 60 }, (_, n) => `svc${n}:AnActionWithALongName${i}`),
                    Resource: '*',
                  },
                ],
              },
            },
          ],
        },
      };
    }
    const lines = iamInventoryLines(summary({ Resources: resources }));
    const kept = summary({ Resources: resources }).iamInventory?.entries.length ?? 0;
    expect(kept).toBeGreaterThan(0);
    expect(lines.at(-1)).toBe(`… and ${200 - kept} more`);
    // 60 actions: 40 kept on the record, 12 listed on the line.
    expect(lines).toContainEqual(
      expect.stringMatching(
        /^ {2}actions: (svc\d+:AnActionWithALongName0, ){11}svc\d+:AnActionWithALongName0 \(\+48 more\)$/,
      ),
    );
  });

  it("shows the inventory in the CLI's deployment view, from the API's document", () => {
    const body = deploymentSchema.parse({
      deploymentId: '01JINVENTORY',
      application: 'shop',
      environment: 'prod',
      ref: 'main',
      requester: { type: 'local', user: 'carol' },
      status: 'RUNNING',
      phase: 'AWAITING_APPROVAL',
      requestedAt: '2026-12-04T12:00:00.000Z',
      changeSet: describeChangeSet(summary()),
      changeSetSummary: JSON.parse(JSON.stringify(summary())),
    });
    const lines = renderStatus(body, [], {
      paint: painter(false),
      now: Date.parse('2026-12-04T12:01:00.000Z'),
      timeZone: 'UTC',
      decorated: false,
    });
    const text = lines.join('\n');
    expect(text).toContain('  role AdminRole');
    expect(text).toContain('    ! Resource *, action *');
  });

  it('strips control characters the API document might carry before they reach the terminal', () => {
    const hostileSummary = JSON.parse(JSON.stringify(summary())) as {
      iamInventory: { entries: { id: string }[] };
    };
    (hostileSummary.iamInventory.entries[0] as { id: string }).id = 'Evil\u001b]0;pwned\u0007Role';
    const body = deploymentSchema.parse({
      deploymentId: '01JINVENTORY',
      application: 'shop',
      environment: 'prod',
      requester: { type: 'local', user: 'carol' },
      status: 'RUNNING',
      requestedAt: '2026-12-04T12:00:00.000Z',
      changeSetSummary: hostileSummary,
    });
    const text = renderStatus(body, [], {
      paint: painter(false),
      now: 0,
      timeZone: 'UTC',
      decorated: false,
    }).join('\n');
    expect(text).toContain('Evil');
    expect(text).not.toContain('\u001b');
    expect(text).not.toContain('\u0007');
  });

  it('points the approver at the inventory while the deployment waits', () => {
    const [step] = describeEvents([
      {
        type: 'APPROVAL_REQUESTED',
        at: '2026-12-04T12:00:00.000Z',
        detail: { deploymentId: '01JINVENTORY', expiresAt: '2026-12-04T13:00:00.000Z' },
      },
    ]);
    expect(step?.text).toContain('crossdeploy status 01JINVENTORY lists the IAM it grants');
  });
});
