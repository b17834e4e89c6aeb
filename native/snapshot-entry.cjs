/* The script `node --build-snapshot` runs to make the `dockless` command's V8
 * startup snapshot (native/snapshot.mjs builds it, native/cli/main.c runs it):
 * the library's bundle and the command line's code for `run` are evaluated
 * here once, at install, instead of at every command, and `run`'s parsing is
 * rehearsed, so that the blob keeps that code compiled. Nothing here may read
 * the environment, open a handle or start a timer: whatever it does is frozen
 * into the blob. Node 20 gives a snapshot's script a `require` of built-in
 * modules only; the bundle's packages loaded at first use (lazyRequire) are
 * resolved at run time, from core.js's own path. */
'use strict';
const { readFileSync } = require('node:fs');
const { dirname, join } = require('node:path');
const { pathToFileURL } = require('node:url');
const { startupSnapshot } = require('node:v8');
const { Script } = require('node:vm');

const file = process.env.DOCKLESS_SNAPSHOT_CORE;
if (!startupSnapshot.isBuildingSnapshot() || file === undefined) throw new Error('run by native/snapshot.mjs only');
const cliScript = join(dirname(file), 'cli.js');
const factory = new Script(readFileSync(file, 'latin1'), { filename: file }).runInThisContext();
const core = { exports: {} };
factory(core.exports, require, core, file, dirname(file), pathToFileURL(file).href);

let cli;
core.exports
  .loadCli()
  .then(async (loaded) => {
    await loaded.rehearse(['run', '--rm', '--network', 'none', 'image', 'true']);
    cli = loaded;
  })
  .catch((error) => {
    process.exitCode = 1;
    console.error(error);
  });

startupSnapshot.setDeserializeMainFunction(async () => {
  // As if started as `node dist/bundle/cli.js …`: what the commands read of their own start
  // (the background remover starts this command again) sees the plain bundle's.
  process.argv.splice(1, 0, cliScript);
  process.execArgv.length = 0;
  process.exitCode = await cli.main(process.argv.slice(2));
  // As bin.ts: once the loop is empty, end without tearing the V8 heap down.
  process.once('beforeExit', () => process.exit());
});
