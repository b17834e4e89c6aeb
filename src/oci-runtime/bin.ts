#!/usr/bin/env node
/**
 * The `dockless-runtime` executable: runs {@link main} on the process's
 * arguments and exits with its code.
 *
 * @module
 */
import { main } from './main.js';

process.exitCode = await main(process.argv.slice(2));
