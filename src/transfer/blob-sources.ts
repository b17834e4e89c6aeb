/**
 * Which repositories of a registry are known to hold a blob, learnt from
 * this process's pulls and pushes, so that a push to another repository of
 * the same registry can mount the blob instead of uploading it (as Docker's
 * "distribution sources" do, though those persist across runs).
 *
 * @module
 */

import type { Digest } from '../oci/index.js';

const MAX_REPOSITORIES_PER_BLOB = 8;
const MAX_BLOBS = 10_000;

// registry → digest → repositories, most recent last.
const sources = new Map<string, Map<Digest, string[]>>();
let count = 0;

/** Records that `repository` of `registry` holds the blob `digest`. */
export function rememberBlobSource(registry: string, repository: string, digest: Digest): void {
  let byDigest = sources.get(registry);
  if (byDigest === undefined) {
    byDigest = new Map();
    sources.set(registry, byDigest);
  }
  let repos = byDigest.get(digest);
  if (repos === undefined) {
    if (count >= MAX_BLOBS) {
      sources.clear();
      count = 0;
      byDigest = new Map();
      sources.set(registry, byDigest);
    }
    repos = [];
    byDigest.set(digest, repos);
    count++;
  }
  const at = repos.indexOf(repository);
  if (at !== -1) repos.splice(at, 1);
  repos.push(repository);
  if (repos.length > MAX_REPOSITORIES_PER_BLOB) repos.shift();
}

/** The repositories of `registry` known to hold `digest`, most recent first. */
export function blobSources(registry: string, digest: Digest): string[] {
  return [...(sources.get(registry)?.get(digest) ?? [])].reverse();
}
