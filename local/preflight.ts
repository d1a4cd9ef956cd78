import { spawnSync } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { ConfigError } from '#shared/errors.ts';
import type { Registry } from '#shared/registry/registry.ts';
import { localRunnerOf } from './targets.ts';

/**
 * The start-up check of local mode: every environment whose jobs run for real on this machine (`runner: local`,
 * and the registry default `codebuild`, which local mode runs the same way) needs SAM CLI, the AWS CLI and
 * python3 with PyYAML (the deploy job checks the built template with it) on the PATH its jobs inherit. A
 * missing one is reported at start, naming the tool and the environments, rather than by a build failing
 * half-way. `runner: simulate` environments need none of them: their `sam` and `aws` are stand-ins.
 */

export interface ToolProbe {
  /** Whether `command` is an executable file in one of PATH's directories. */
  onPath(command: string): boolean;
  /** Whether python3 from PATH can import yaml (PyYAML). */
  pythonHasYaml(): boolean;
}

interface Tool {
  name: string;
  what: string;
  present: (probe: ToolProbe) => boolean;
}

const TOOLS: Tool[] = [
  { name: 'sam', what: 'SAM CLI', present: (probe) => probe.onPath('sam') },
  { name: 'aws', what: 'AWS CLI', present: (probe) => probe.onPath('aws') },
  {
    name: 'python3',
    what: 'Python 3, which runs the buildspecs’ checks',
    present: (probe) => probe.onPath('python3'),
  },
  {
    name: 'PyYAML',
    what: 'PyYAML for python3 (python3 -m pip install pyyaml)',
    present: (probe) => probe.onPath('python3') && probe.pythonHasYaml(),
  },
];

/** The probe of this machine, looking where jobs look: the PATH they inherit from the server. */
export function systemToolProbe(env: NodeJS.ProcessEnv = process.env): ToolProbe {
  const dirs = (env.PATH ?? '').split(delimiter).filter(Boolean);
  return {
    onPath: (command) =>
      dirs.some((dir) => {
        const file = join(dir, command);
        try {
          accessSync(file, constants.X_OK);
          return statSync(file).isFile();
        } catch {
          return false;
        }
      }),
    pythonHasYaml: () =>
      spawnSync('python3', ['-c', 'import yaml'], { env, stdio: 'ignore', timeout: 30_000 }).status === 0,
  };
}

/** Throws a ConfigError (exit 2) naming each missing tool and the environments that need it. */
export function checkLocalTools(registry: Registry, probe: ToolProbe): void {
  const needing: string[] = [];
  for (const [application, app] of Object.entries(registry.applications)) {
    for (const [environment, env] of Object.entries(app.environments)) {
      if (localRunnerOf(env.runner) === 'local') needing.push(`${application}/${environment}`);
    }
  }
  if (needing.length === 0) return;
  const missing = TOOLS.filter((tool) => !tool.present(probe));
  if (missing.length === 0) return;
  const environments = needing.join(', ');
  throw new ConfigError(
    [
      `local mode cannot run jobs for ${environments} (runner: local): missing on PATH:`,
      ...missing.map((tool) => `  ${tool.name}: ${tool.what}`),
      'Install them, or set `runner: simulate` on those environments to run the buildspecs with stand-ins.',
    ].join('\n'),
  );
}
