import type { ChatLinks } from '#shared/chat/ports.ts';

/** AWS: the Step Functions console page of the deployment's execution (its name is the deployment id). */
export function executionConsoleLinks(stateMachineArn: string): ChatLinks {
  const match = /^arn:(aws[a-z-]*):states:([a-z0-9-]+):(\d{12}):stateMachine:([\w-]+)$/.exec(stateMachineArn);
  if (!match) return { status: () => undefined };
  const [, partition, region, account, name] = match;
  const host = partition === 'aws-cn' ? `${region}.console.amazonaws.cn` : `${region}.console.aws.amazon.com`;
  return {
    status: (deploymentId) => {
      const execution = `arn:${partition}:states:${region}:${account}:execution:${name}:${deploymentId}`;
      return `https://${host}/states/home?region=${region}#/v2/executions/details/${execution}`;
    },
  };
}

/** Local mode: the local server's own deployment route (known once it listens). */
export function localServerLinks(baseUrl: () => string | undefined): ChatLinks {
  return {
    status: (deploymentId) => {
      const base = baseUrl();
      return base ? `${base}/deployments/${encodeURIComponent(deploymentId)}` : undefined;
    },
  };
}
