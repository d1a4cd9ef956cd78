/**
 * aws/: the AWS adapters behind the ports, and the only part of functions/shared that imports an AWS SDK
 * (with each function's handler.ts). May import anything in functions/shared; nothing imports aws/ but
 * handlers, local mode, scripts and tests.
 */
import { CodeBuildClient } from '@aws-sdk/client-codebuild';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SFNClient } from '@aws-sdk/client-sfn';
import { STSClient } from '@aws-sdk/client-sts';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { envShapes, leaseSeconds, publishedBuildspecs, readEnv } from '../config.ts';
import { BUNDLED_REGISTRY } from '../registry/bundled.ts';
import type { Registry } from '../registry/registry.ts';
import { CodeBuildJobRunner } from './codebuild.ts';
import { DynamoDeploymentStore } from './store.ts';
import { StsTargetAccess } from './sts.ts';
import { SfnTaskTokens } from './task-tokens.ts';

/**
 * The real dependencies of the Lambda handlers, each built once per process on first use (so a handler
 * module can be imported by local mode and tests without AWS configuration).
 */
function once<T>(make: () => T): () => T {
  let value: T | undefined;
  return () => {
    value ??= make();
    return value;
  };
}

const region = () => process.env.AWS_REGION ?? 'us-east-1';

/** Parsed and checked when it was bundled (npm run registry:derive), so no schema ships with the functions. */
export const registry = (): Registry => BUNDLED_REGISTRY;

export const store = /* @__PURE__ */ once(() => {
  const { TABLE_NAME } = readEnv(envShapes.table);
  const client = DynamoDBDocumentClient.from(new DynamoDBClient({}), {
    marshallOptions: { removeUndefinedValues: true },
  });
  return new DynamoDeploymentStore({ client, tableName: TABLE_NAME });
});

export const jobSettings = /* @__PURE__ */ once(() => {
  const { ARTIFACTS_BUCKET } = readEnv(envShapes.jobs);
  return { outputBucket: ARTIFACTS_BUCKET };
});

export const lockLeaseSeconds = /* @__PURE__ */ once(() => {
  const { QUEUED_TIMEOUT_MINUTES, DEPLOY_TIMEOUT_MINUTES } = readEnv(envShapes.timeouts);
  return leaseSeconds(QUEUED_TIMEOUT_MINUTES, DEPLOY_TIMEOUT_MINUTES);
});

/** Describes and stops jobs (every function that watches or settles them). */
export const runner = /* @__PURE__ */ once(() => {
  const { BUILD_PROJECT, DEPLOY_PROJECT } = readEnv(envShapes.jobs);
  return new CodeBuildJobRunner({
    client: new CodeBuildClient({}),
    buildProject: BUILD_PROJECT,
    deployProject: DEPLOY_PROJECT,
    region: region(),
  });
});

/** Starts jobs too: StartJob alone is given the published buildspecs (the JobSpecs custom resource). */
export const jobStarter = /* @__PURE__ */ once(() => {
  const { BUILD_PROJECT, DEPLOY_PROJECT } = readEnv(envShapes.jobs);
  const specs = readEnv(envShapes.jobSpecs);
  return new CodeBuildJobRunner({
    client: new CodeBuildClient({}),
    buildProject: BUILD_PROJECT,
    deployProject: DEPLOY_PROJECT,
    buildspecs: publishedBuildspecs(specs),
    region: region(),
  });
});

export const tokens = /* @__PURE__ */ once(() => new SfnTaskTokens(new SFNClient({})));

export const targetAccess = /* @__PURE__ */ once(() => new StsTargetAccess({ sts: new STSClient({}) }));

export const clock = { now: () => new Date() };

export const orchestratorAccount = /* @__PURE__ */ once(
  () => readEnv(envShapes.orchestrator).ORCHESTRATOR_ACCOUNT_ID,
);
