import { describe, expect, it } from 'vitest';
import { envShapes, optionalText, readEnv } from '#shared/config.ts';

describe('readEnv', () => {
  it('returns the checked values, numbers as numbers', () => {
    expect(
      readEnv(envShapes.timeouts, { QUEUED_TIMEOUT_MINUTES: '5', DEPLOY_TIMEOUT_MINUTES: '60' }),
    ).toEqual({ QUEUED_TIMEOUT_MINUTES: 5, DEPLOY_TIMEOUT_MINUTES: 60 });
    expect(readEnv(envShapes.stateMachine, { STATE_MACHINE_ARN: 'arn:aws:states:x' })).toEqual({
      STATE_MACHINE_ARN: 'arn:aws:states:x',
    });
  });

  it('names every variable that is missing or wrong, in one error', () => {
    expect(() =>
      readEnv(
        { ...envShapes.timeouts, ...envShapes.stateMachine, ...envShapes.table },
        {
          QUEUED_TIMEOUT_MINUTES: '1.5',
          STATE_MACHINE_ARN: 'my-machine',
          TABLE_NAME: 'ab',
        },
      ),
    ).toThrow(
      'invalid configuration: QUEUED_TIMEOUT_MINUTES: must be a whole number above 0; DEPLOY_TIMEOUT_MINUTES: is required; STATE_MACHINE_ARN: must be an ARN (arn:...); TABLE_NAME: must be at least 3 characters',
    );
  });

  it.each(['0', '-3', '', ' ', 'ten'])('refuses %j as a number of minutes', (value) => {
    expect(() =>
      readEnv(envShapes.timeouts, { QUEUED_TIMEOUT_MINUTES: value, DEPLOY_TIMEOUT_MINUTES: '1' }),
    ).toThrow('QUEUED_TIMEOUT_MINUTES');
  });

  it('treats an optional variable that is empty or blank as unset', () => {
    const spec = { SECRET: optionalText() };
    expect(readEnv(spec, {})).toEqual({ SECRET: undefined });
    expect(readEnv(spec, { SECRET: '  ' })).toEqual({ SECRET: undefined });
    expect(readEnv(spec, { SECRET: ' s3cret ' })).toEqual({ SECRET: 's3cret' });
  });
});
