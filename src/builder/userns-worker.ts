/**
 * The Node process that `storeUpperInUserns` starts as root of a rootless
 * container's user namespace (through the helper's `userns-exec`): it reads a
 * {@link UsernsUpperJob} on stdin, prunes the upper dir (a copy of it, for a
 * running container) and writes its layer tar on stdout. On failure its last
 * stderr line is {@link USERNS_WORKER_ERROR} and the error as JSON, and it exits 1.
 *
 * @module
 */

import { rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { MergedView } from '../layer/index.js';
import { copyTree } from './copy-tree.js';
import { pruneUpper, upperTar, USERNS_WORKER_ERROR, type UsernsUpperJob } from './layer-from-upper.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

async function main(): Promise<void> {
  const job = JSON.parse(await readStdin()) as UsernsUpperJob;
  const helper = { helperPath: job.helperPath };
  let dir = job.upper;
  try {
    if (job.copyTo !== undefined) {
      await copyTree(job.upper, job.copyTo, { context: `copy \`${job.upper}\``, ...helper });
      dir = job.copyTo;
    }
    const xattrs = await pruneUpper(dir, job.lowers.length > 0 ? new MergedView(job.lowers, helper) : undefined, job.placeholders, job.helperPath);
    const { tar } = upperTar(dir, { ...helper, xattrs, ...(job.sourceDateEpoch !== undefined ? { sourceDateEpoch: job.sourceDateEpoch } : {}) });
    await pipeline(tar, process.stdout);
  } finally {
    if (job.copyTo !== undefined) await rm(job.copyTo, { recursive: true, force: true });
  }
}

try {
  await main();
} catch (error) {
  const e = error as { name?: string; message?: string; path?: string; errnoCode?: string; code?: string };
  const report = {
    name: e.name,
    message: e.message ?? String(error),
    ...(e.path !== undefined ? { path: e.path } : {}),
    ...(e.errnoCode !== undefined ? { errnoCode: e.errnoCode } : typeof e.code === 'string' && /^E[A-Z0-9]+$/.test(e.code) ? { errnoCode: e.code } : {}),
  };
  process.stderr.write(`\n${USERNS_WORKER_ERROR}${JSON.stringify(report)}\n`);
  process.exitCode = 1;
}
