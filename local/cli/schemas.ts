import { z } from 'zod';

/**
 * The parts of openapi.yaml's response bodies the CLI relies on. Loose on purpose: unknown fields are
 * kept (and printed by `--json` as received) so a newer server does not break an older CLI; only what
 * rendering needs is checked, so a wrong `--url` fails with a clear message instead of `undefined`.
 */

const requester = z.looseObject({ type: z.string() });
const releaseNumber = z.number().int().min(1);
/** A promotion's or rollback's source: the deployment whose recorded build output it deploys. */
const source = z.looseObject({
  deploymentId: z.string(),
  environment: z.string(),
  release: releaseNumber.optional(),
});

export const deploymentSchema = z.looseObject({
  deploymentId: z.string(),
  application: z.string(),
  environment: z.string(),
  ref: z.string().optional(),
  resolvedCommit: z.string().optional(),
  targetAccount: z.string().optional(),
  targetRegion: z.string().optional(),
  stackName: z.string().optional(),
  requester: requester.optional(),
  reason: z.string().optional(),
  trigger: z.string().optional(),
  dryRun: z.boolean().optional(),
  // Strings, not enums: later issues add statuses (SUPERSEDED, SKIPPED) an older CLI must still show.
  status: z.string(),
  phase: z.string().optional(),
  requestedAt: z.string(),
  updatedAt: z.string().optional(),
  finishedAt: z.string().optional(),
  jobs: z
    .looseObject({
      build: z.looseObject({ buildId: z.string(), logUrl: z.string().optional() }).optional(),
      deploy: z.looseObject({ buildId: z.string(), logUrl: z.string().optional() }).optional(),
    })
    .optional(),
  changeSet: z.string().optional(),
  // Only the IAM inventory is shown from the summary; the rest of it stays in `--json`.
  changeSetSummary: z
    .looseObject({
      iamInventory: z
        .looseObject({
          roles: z.number(),
          actions: z.number(),
          wildcards: z.number(),
          principals: z.number(),
          omitted: z.number(),
          entries: z.array(
            z.looseObject({
              id: z.string(),
              type: z.string(),
              kind: z.enum(['role', 'policy', 'identity', 'resource-policy']),
              principals: z.array(z.string()),
              actions: z.array(z.string()),
              managedPolicies: z.array(z.string()),
              boundary: z.string().optional(),
              attachedTo: z.array(z.string()),
              wildcards: z.array(z.string()),
              moreActions: z.number().optional(),
              morePrincipals: z.number().optional(),
            }),
          ),
        })
        .optional(),
    })
    .optional(),
  errorCode: z.string().optional(),
  errorMessage: z.string().optional(),
  // A string, not an enum, for the same reason as status: an older server sends none, a newer one may add kinds.
  kind: z.string().optional(),
  source: source.optional(),
  rollbackOf: releaseNumber.optional(),
  release: releaseNumber.optional(),
  freezeOverride: z.boolean().optional(),
  waitStartedAt: z.string().optional(),
  // reason a string, not an enum: a newer server may queue for other reasons.
  waitingBehind: z.looseObject({ deploymentId: z.string(), reason: z.string() }).optional(),
  // Local mode, `runner: simulate`: nothing was deployed. Shown wherever the deployment is.
  simulated: z.boolean().optional(),
});
export type DeploymentView = z.infer<typeof deploymentSchema>;

export const acceptedSchema = z.looseObject({
  deploymentId: z.string(),
  status: z.string(),
  ref: z.string().optional(),
  dryRun: z.boolean().optional(),
  kind: z.string().optional(),
  source: source.optional(),
  rollbackOf: releaseNumber.optional(),
  simulated: z.boolean().optional(),
});
export type AcceptedView = z.infer<typeof acceptedSchema>;

/** POST /deployments/{id}/approval: the decision the workflow now acts on. */
export const decisionSchema = z.looseObject({
  deploymentId: z.string(),
  decision: z.enum(['APPROVED', 'REJECTED']),
  decidedAt: z.string(),
});

export const eventSchema = z.looseObject({
  // A type this CLI does not know yet is still shown, as its raw name.
  type: z.string(),
  at: z.string(),
  detail: z.record(z.string(), z.unknown()).default({}),
});
export type EventView = z.infer<typeof eventSchema>;
export const eventListSchema = z.looseObject({ items: z.array(eventSchema) });

/** GET /deployments/{id}/follow: the record and the events since the cursor. */
export const followSchema = z.looseObject({
  deployment: deploymentSchema,
  items: z.array(eventSchema),
  nextCursor: z.string().optional(),
});

export const historySchema = z.looseObject({
  items: z.array(deploymentSchema),
  nextCursor: z.string().optional(),
});

export const logPageSchema = z.looseObject({
  items: z.array(z.looseObject({ job: z.string(), at: z.string(), message: z.string() })),
  nextCursor: z.string().optional(),
});
export type LogLine = z.infer<typeof logPageSchema>['items'][number];

export const applicationsSchema = z.looseObject({
  items: z.array(
    z.looseObject({
      name: z.string(),
      defaultRef: z.string().optional(),
      environments: z.array(
        z.looseObject({
          name: z.string(),
          accountId: z.string().optional(),
          region: z.string().optional(),
          stackName: z.string().optional(),
          mode: z.string().optional(),
        }),
      ),
    }),
  ),
});
export type ApplicationsView = z.infer<typeof applicationsSchema>;

const nullableSeconds = z.number().nullable();
export const metricsSchema = z.looseObject({
  application: z.string(),
  environment: z.string(),
  from: z.string(),
  to: z.string(),
  deployments: z.number(),
  deploymentFrequency: z.looseObject({ succeeded: z.number(), days: z.number(), perDay: z.number() }),
  leadTime: z.looseObject({
    samples: z.number(),
    medianSeconds: nullableSeconds,
    meanSeconds: nullableSeconds,
    unavailable: z.string().optional(),
  }),
  changeFailureRate: z.looseObject({ failed: z.number(), total: z.number(), rate: z.number().nullable() }),
  timeToRestore: z.looseObject({
    restored: z.number(),
    unrestored: z.number(),
    medianSeconds: nullableSeconds,
    meanSeconds: nullableSeconds,
  }),
});
export type MetricsView = z.infer<typeof metricsSchema>;
