/* The script `node --build-snapshot` runs to make dockless-runtime's V8
 * startup snapshot (native/snapshot.mjs builds it, native/runtime/main.c
 * runs it): the Node front end's code (dist/bundle/runtime-core.js, the same
 * code as runtime.js as a classic script) is evaluated here once instead of at
 * every `create`, `run` or `exec`, and their command lines are rehearsed
 * (parsed up to the action, the default spec translated for a fixed host) so
 * that the blob keeps that code compiled. Nothing here may read the
 * environment, the host's cgroups or any state directory, open a handle or
 * start a timer: whatever it does is frozen into the blob. */
'use strict';
const { readFileSync } = require('node:fs');
const { dirname, join } = require('node:path');
const { pathToFileURL } = require('node:url');
const { startupSnapshot } = require('node:v8');
const { Script } = require('node:vm');

const file = process.env.DOCKLESS_SNAPSHOT_CORE;
if (!startupSnapshot.isBuildingSnapshot() || file === undefined) throw new Error('run by native/snapshot.mjs only');
const plainScript = join(dirname(file), 'runtime.js');
const factory = new Script(readFileSync(file, 'latin1'), { filename: file }).runInThisContext();
const front = { exports: {} };
factory(front.exports, require, front, file, dirname(file), pathToFileURL(file).href);

(async () => {
  await front.exports.rehearse(['create', '--bundle', '/rehearsal', '--pid-file', '/rehearsal/pid', 'id']);
  await front.exports.rehearse(['run', '--bundle', '/rehearsal', 'id']);
  await front.exports.rehearse(['exec', '--process', '/rehearsal/process.json', '--detach', 'id']);
})().catch((error) => {
  process.exitCode = 1;
  console.error(error);
});

startupSnapshot.setDeserializeMainFunction(async () => {
  // As if started as `node dist/bundle/runtime.js …`: what the front end reads of its own start sees the plain file's.
  process.argv.splice(1, 0, plainScript);
  process.execArgv.length = 0;
  process.exitCode = await front.exports.main(process.argv.slice(2));
});
