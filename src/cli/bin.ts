#!/usr/bin/env node
/**
 * The `dockless` executable: runs {@link main} on the process's arguments and
 * exits with its code.
 *
 * @module
 */
import module from 'node:module';

// Node 22.1+ keeps V8's compiled code of the modules loaded after this (the
// bundle, ~1 MB of JavaScript) in a cache under the temporary directory, so a
// command does not parse and compile it again; older Nodes have no such call.
(module as { enableCompileCache?: () => unknown }).enableCompileCache?.();
const { main } = await import('./main.js');

process.exitCode = await main(process.argv.slice(2));
// Once nothing is left to do, ending without Node's teardown of the V8 heap (~10-20 ms of
// munmap for a command's heap) changes nothing a command did.
process.once('beforeExit', () => process.exit());
