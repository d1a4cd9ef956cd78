import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { getAtt, isRecord, loadTemplate, resolveStatic } from '../../scripts/cfn-yaml.ts';
import {
  aslPlaceholders,
  checkAsl,
  definitionPath,
  definitionSubstitutions,
  plausibleSubstitutions,
  stateMachineResource,
  substituteAsl,
  UnresolvedPlaceholderError,
} from '../../scripts/check-template.ts';

const root = resolve(import.meta.dirname, '../..');
const template = loadTemplate(join(root, 'template.yaml'));
const [machineId, machine] = stateMachineResource(template);
const text = readFileSync(definitionPath(root, template), 'utf8');
const substitutions = definitionSubstitutions(template);
const definition = substituteAsl(text, plausibleSubstitutions(template)) as { States: Record<string, State> };
// The definition as written, placeholders intact, to see which substitution feeds which field.
const raw = JSON.parse(text) as { TimeoutSeconds?: unknown; States: Record<string, State> };

interface State {
  Type: string;
  Resource?: string;
  Parameters?: Record<string, unknown>;
  TimeoutSeconds?: unknown;
  TimeoutSecondsPath?: string;
}

const allowedMinutes = (parameter: string): number[] =>
  ((template.Parameters?.[parameter]?.AllowedValues ?? []) as unknown[]).map(Number);

/** Every (queued, job timeout) pair an installation can choose. */
const timeoutPairs = (jobParameter: string) =>
  allowedMinutes('QueuedTimeoutMinutes').flatMap((queued) =>
    allowedMinutes(jobParameter).map((job) => ({ queued, job })),
  );

/** A substitution's value at the given parameter values. */
const substitutionAt = (name: string, values: Record<string, number>): number =>
  Number(
    resolveStatic(
      template,
      substitutions[name],
      Object.fromEntries(Object.entries(values).map(([k, v]) => [k, String(v)])),
    ),
  );

/** Values anywhere in the raw definition keyed `key` or `key.$`, as strings. */
function valuesKeyed(node: unknown, key: string, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const item of node) valuesKeyed(item, key, out);
  else if (isRecord(node)) {
    for (const [k, v] of Object.entries(node)) {
      if ((k === key || k === `${key}.$`) && typeof v === 'string') out.push(v);
      valuesKeyed(v, key, out);
    }
  }
  return out;
}

/**
 * The substitution that sets a waiting Task's timeout: `"TimeoutSeconds": "${X}"`, or a
 * `TimeoutSecondsPath` whose last field is set from `${X}` somewhere in the definition
 * (e.g. `"build.$": "States.StringToJson('${BuildWaitSeconds}')"`).
 */
function timeoutSubstitution(name: string): string | undefined {
  const state = raw.States[name];
  if (typeof state?.TimeoutSeconds === 'string') return /^\$\{(\w+)\}$/.exec(state.TimeoutSeconds)?.[1];
  if (typeof state?.TimeoutSecondsPath === 'string') {
    const field = state.TimeoutSecondsPath.split('.').pop() ?? '';
    const names = valuesKeyed(raw, field).flatMap((value) => [...aslPlaceholders(value)]);
    return names.length === 1 ? names[0] : undefined;
  }
  return undefined;
}

const waitingTasks = Object.entries(definition.States).filter(
  ([, state]) => state.Type === 'Task' && String(state.Resource).endsWith('.waitForTaskToken'),
);

describe('state machine resource', () => {
  const properties = machine.Properties ?? {};

  it('is a Standard workflow defined by statemachine/deploy.asl.json', () => {
    expect(machineId).toBe('DeployStateMachine');
    expect(properties.Type).toBe('STANDARD');
    expect(properties.DefinitionUri).toBe('statemachine/deploy.asl.json');
  });

  it('logs every event but never execution data, and is traced', () => {
    expect(properties.Logging).toMatchObject({ Level: 'ALL', IncludeExecutionData: false });
    expect(properties.Tracing).toEqual({ Enabled: true });
  });
});

describe('definition substitutions', () => {
  it('are exactly the names of docs/design.md', () => {
    expect(Object.keys(substitutions).sort()).toEqual(
      [
        'AcquireLockFunctionArn',
        'ApprovalFunctionArn',
        'AssumeTargetRoleFunctionArn',
        'BuildWaitSeconds',
        'DeployWaitSeconds',
        'RecordResultFunctionArn',
        'ReleaseLockFunctionArn',
        'StartJobFunctionArn',
        'ValidateRequestFunctionArn',
      ].sort(),
    );
  });

  it('give every placeholder in the definition a value', () => {
    const missing = [...aslPlaceholders(text)].filter((name) => !Object.hasOwn(substitutions, name));
    expect(missing).toEqual([]);
  });

  it('are each used by the definition', () => {
    const used = aslPlaceholders(text);
    expect(Object.keys(substitutions).filter((name) => !used.has(name))).toEqual([]);
  });

  it('pass function ARNs as !GetAtt <Function>.Arn', () => {
    for (const [name, value] of Object.entries(substitutions)) {
      if (!name.endsWith('FunctionArn')) continue;
      expect(getAtt(value), name).toEqual([name.replace(/Arn$/, ''), 'Arn']);
    }
  });

  it('leave the definition free of account-specific ARNs', () => {
    expect(text).not.toMatch(/\d{12}/);
    expect(text).not.toMatch(/arn:aws[a-z-]*:lambda:/);
  });

  it('make a valid ASL definition once substituted', () => {
    expect(checkAsl(root, template).errors).toEqual([]);
  });
});

describe('waits', () => {
  it('has the four waiting Tasks: Build and Deploy, Wait For Lock (the parked waiter, no job) and Wait For Approval', () => {
    expect(waitingTasks.map(([name]) => name).sort()).toEqual([
      'Build',
      'Deploy',
      'Wait For Approval',
      'Wait For Lock',
    ]);
    const jobs = waitingTasks.map(([, state]) => (state.Parameters?.Payload as Record<string, unknown>)?.job);
    expect(jobs.sort()).toEqual(['build', 'deploy', undefined, undefined]);
  });

  it("times the approval wait out after the environment's approvalTimeoutMinutes (the review's answer)", () => {
    const entry = waitingTasks.find(
      ([, s]) => (s.Parameters?.Payload as Record<string, unknown>)?.action === 'wait',
    );
    expect(entry?.[0]).toBe('Wait For Approval');
    expect(entry?.[1].TimeoutSecondsPath).toBe('$.review.value.timeoutSeconds');
  });

  describe.each([
    {
      job: 'build',
      substitution: 'BuildWaitSeconds',
      timeout: 'BuildTimeoutMinutes',
      project: 'BuildProject',
    },
    {
      job: 'deploy',
      substitution: 'DeployWaitSeconds',
      timeout: 'DeployTimeoutMinutes',
      project: 'DeployProject',
    },
  ])('the $job Task', ({ job, substitution, timeout, project }) => {
    const entry = waitingTasks.find(
      ([, s]) => (s.Parameters?.Payload as Record<string, unknown>)?.job === job,
    );

    it(`times out through \${${substitution}}`, () => {
      expect(entry, `a waitForTaskToken Task with job "${job}"`).toBeDefined();
      expect(timeoutSubstitution(entry?.[0] ?? '')).toBe(substitution);
    });

    it('waits at least queued + job timeout, for every allowed pair of timeouts', () => {
      expect(substitutions[substitution]).toEqual({
        'Fn::FindInMap': ['WaitSeconds', { Ref: 'QueuedTimeoutMinutes' }, { Ref: timeout }],
      });
      const pairs = timeoutPairs(timeout);
      expect(pairs.length).toBeGreaterThan(0);
      for (const { queued, job: minutes } of pairs) {
        const seconds = substitutionAt(substitution, { QueuedTimeoutMinutes: queued, [timeout]: minutes });
        expect(seconds, `queued ${queued} + ${job} ${minutes} minutes`).toBeGreaterThan(
          (queued + minutes) * 60,
        );
      }
    });

    it('uses the same timeout parameters as the CodeBuild project', () => {
      const properties = template.Resources[project]?.Properties ?? {};
      expect(properties.QueuedTimeoutInMinutes).toEqual({ Ref: 'QueuedTimeoutMinutes' });
      expect(properties.TimeoutInMinutes).toEqual({ Ref: timeout });
    });
  });

  it('gives the execution its own timeout, longer than both jobs at their longest', () => {
    expect(typeof raw.TimeoutSeconds).toBe('number');
    const longest = (substitution: string, timeout: string) =>
      Math.max(
        ...timeoutPairs(timeout).map(({ queued, job }) =>
          substitutionAt(substitution, { QueuedTimeoutMinutes: queued, [timeout]: job }),
        ),
      );
    expect(raw.TimeoutSeconds as number).toBeGreaterThan(
      longest('BuildWaitSeconds', 'BuildTimeoutMinutes') +
        longest('DeployWaitSeconds', 'DeployTimeoutMinutes'),
    );
  });
});

describe('Wait For Lock (the parked waiter)', () => {
  const park = raw.States['Wait For Lock'] as unknown as {
    Type: string;
    Resource: string;
    TimeoutSecondsPath?: string;
    Catch: { ErrorEquals: string[]; ResultPath: string; Next: string }[];
    Next: string;
  };

  it("parks on the Acquire Lock function with a task token, timed out by Acquire Lock's recheckSeconds", () => {
    expect(park).toMatchObject({
      Type: 'Task',
      Resource: 'arn:aws:states:::lambda:invoke.waitForTaskToken',
      TimeoutSecondsPath: '$.lock.value.recheckSeconds',
      Next: 'Acquire Lock',
    });
  });

  it('goes back to Acquire Lock on its safety-net timeout without marking the deployment failed', () => {
    const [first, rest] = [park.Catch[0], park.Catch.slice(1)];
    expect(first).toEqual({
      ErrorEquals: ['States.Timeout'],
      ResultPath: '$.lockRecheck',
      Next: 'Acquire Lock',
    });
    // Did It Fail? reads $.error: a timeout must not write it. Anything else does fail, as from every Task.
    expect(rest).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Record Failure' }]);
  });
});

describe('substituteAsl', () => {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a CloudFormation/ASL placeholder, not JavaScript
  const asl = '{"A":"${Fn}","B":"${N}","C":"States.StringToJson(\'${N}\')","D":${N}}';

  it('splices strings, and turns a whole-string numeric placeholder into a number', () => {
    expect(substituteAsl(asl, { Fn: 'arn:aws:lambda:eu-west-1:123456789012:function:f', N: 60 })).toEqual({
      A: 'arn:aws:lambda:eu-west-1:123456789012:function:f',
      B: 60,
      C: "States.StringToJson('60')",
      D: 60,
    });
  });

  it('fails naming every unresolved placeholder', () => {
    expect(() => substituteAsl(asl, { N: 1 })).toThrow(UnresolvedPlaceholderError);
    expect(() => substituteAsl(asl, {})).toThrow(/\$\{Fn\}, \$\{N\}/);
  });
});
