// npm itself may run on an older system Node; the project needs the Node 24 binary that the
// `node` devDependency installs into node_modules/.bin (skipped by `npm ci --ignore-scripts`).
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  console.error(
    `crossdeploy needs Node >= 24, but this script ran on Node ${process.versions.node}.\n` +
      'Run `npm ci` without --ignore-scripts so the `node` devDependency installs its binary,\n' +
      'or put Node 24 first on PATH.',
  );
  process.exit(2);
}
