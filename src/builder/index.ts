/**
 * Builds: {@link LayerBuilder} (step by step, with a build cache), its
 * Dockerfile front-end, `docker commit`, and importing a rootfs directory.
 *
 * @module
 */
export { LayerBuilder } from './layer-builder.js';
export type { AddStepOptions, CopyStepOptions, LayerBuilderOptions } from './layer-builder.js';
export type {
  BuildProgress,
  BuildResult,
  BuildSettings,
  BuildStepInfo,
  HealthcheckOptions,
  RunStepOptions,
  StepLayer,
} from './types.js';
export { buildDockerfile, parseDockerfile } from './dockerfile.js';
export type { DockerfileBuildOptions, DockerfileHeredoc, DockerfileInstruction, DockerfileStage, ParsedDockerfile } from './dockerfile.js';
export { BuildCache, cacheKey, BUILD_CACHE_VERSION } from './cache.js';
export type { CacheEntry, CacheKeyInput, CachedLayer } from './cache.js';
export { commitContainer } from './commit.js';
export type { CommitOptions, CommitResult } from './commit.js';
export { importRootfs } from './import-rootfs.js';
export type { ImportRootfsOptions, ImportRootfsResult } from './import-rootfs.js';
export { DockerIgnore } from './patterns.js';
