#!/usr/bin/env node
// Plain JavaScript on purpose: it must run (and explain itself) on a Node too old to load the TypeScript CLI.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(
    `crossdeploy needs Node >= 24 (it runs TypeScript directly), but this is Node ${process.versions.node}.\n` +
      'From the project, run it as `npx crossdeploy ...` (npm ci installs Node 24 into node_modules/.bin),\n' +
      'or put Node 24 first on PATH.\n',
  );
  process.exit(2);
}

// A reader that stops early (`crossdeploy logs --json | head`) closes the pipe: stop quietly, as Unix
// filters do, rather than die on EPIPE with a stack trace.
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

const { main } = await import('../local/cli.ts');
// exitCode, not exit(): stdout may still be draining into a pipe.
process.exitCode = await main(process.argv.slice(2));
