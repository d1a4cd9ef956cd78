/**
 * Reading a built template from disk for the check (the deploy job's command and `crossdeploy doctor
 * --template`): local nested templates are read from beside it, never from outside its directory.
 */
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';

/** Nested templates `sam build` left next to the template; a URL or a path leaving the directory is not one. */
export function nestedTemplatesBeside(templatePath: string): (location: string) => string | undefined {
  const root = dirname(realpathSync(templatePath));
  return (location) => {
    if (location.includes(':') || location.startsWith('/') || location.split(/[\\/]/).includes('..')) {
      return undefined;
    }
    const path = join(root, location);
    if (!existsSync(path) || !statSync(path).isFile()) return undefined;
    const real = realpathSync(path);
    return real.startsWith(root + sep) ? readFileSync(real, 'utf8') : undefined;
  };
}
