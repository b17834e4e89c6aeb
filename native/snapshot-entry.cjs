/* The script `node --build-snapshot` runs to make a V8 startup snapshot
 * (native/snapshot.mjs builds them, the native launchers run them), with
 * DOCKLESS_SNAPSHOT_KIND naming which:
 * - `cli`, the `dockless` command's (native/cli/main.c): the library's bundle
 *   (cli-core.js) and the command line's code for `run`, with `run`'s parsing rehearsed;
 * - `runtime`, dockless-runtime's Node front end (native/runtime/main.c):
 *   runtime-core.js, the same code as runtime.js as a classic script, with the
 *   `create`, `run` and `exec` command lines rehearsed (parsed up to the action,
 *   the default spec translated for a fixed host).
 * The code is evaluated here once, at install, instead of at every command, and
 * the rehearsals make the blob keep it compiled. Nothing here may read the
 * environment, the host's cgroups or any state directory, open a handle or start
 * a timer: whatever it does is frozen into the blob. Node 20 gives a snapshot's
 * script a `require` of built-in modules only; the bundle's packages loaded at
 * first use (lazyRequire) are resolved at run time, from the script's own path. */
'use strict';
const { readFileSync } = require('node:fs');
const { dirname, join } = require('node:path');
const { pathToFileURL } = require('node:url');
const { startupSnapshot } = require('node:v8');
const { Script } = require('node:vm');

// Loaded now, into the blob: the built-ins a command's first container needs and the bundle loads on
// first use (child_process, with net and dgram: 19 internal modules, ~1.3 ms of CPU of each command
// that spawns the helper). Node warns that child_process is not verified in a snapshot: its spawns
// from the blobs (piped and extra descriptors, detached and not) are what test/integration/cli.test.ts
// and oci-runtime.test.ts run, through the package's bins.
require('node:child_process');
require('node:fs/promises');

const file = process.env.DOCKLESS_SNAPSHOT_CORE;
const kind = process.env.DOCKLESS_SNAPSHOT_KIND;
if (!startupSnapshot.isBuildingSnapshot() || file === undefined || (kind !== 'cli' && kind !== 'runtime')) throw new Error('run by native/snapshot.mjs only');
const factory = new Script(readFileSync(file, 'latin1'), { filename: file }).runInThisContext();
const loaded = { exports: {} };
factory(loaded.exports, require, loaded, file, dirname(file), pathToFileURL(file).href);

let run;
const prepare =
  kind === 'cli'
    ? loaded.exports.loadCli().then(async (cli) => {
        await cli.rehearse(['run', '--rm', '--network', 'none', 'image', 'true']);
        run = { script: 'cli.js', main: cli.main };
      })
    : (async () => {
        const front = loaded.exports;
        await front.rehearse(['create', '--bundle', '/rehearsal', '--pid-file', '/rehearsal/pid', 'id']);
        await front.rehearse(['run', '--bundle', '/rehearsal', 'id']);
        await front.rehearse(['exec', '--process', '/rehearsal/process.json', '--detach', 'id']);
        run = { script: 'runtime.js', main: front.main };
      })();
prepare.catch((error) => {
  process.exitCode = 1;
  console.error(error);
});

startupSnapshot.setDeserializeMainFunction(async () => {
  // As if started as `node dist/bundle/cli.js …` (or runtime.js): what the commands read of
  // their own start (the background remover starts the command again) sees the plain script's.
  process.argv.splice(1, 0, join(dirname(file), run.script));
  process.execArgv.length = 0;
  process.exitCode = await run.main(process.argv.slice(2));
  // As bin.ts: once the loop is empty, the command ends without tearing the V8 heap down.
  if (kind === 'cli') process.once('beforeExit', () => process.exit());
});
