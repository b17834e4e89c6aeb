/**
 * Generic helpers shared by every folder; imports nothing of ours.
 *
 * @module
 */

export * from './errno.js';
export * from './fs.js';
export * from './process.js';
export * from './abort.js';
export * from './json.js';
export * from './dirs.js';
export * from './progress.js';
export * from './tasks.js';
export * from './lazy.js';
export * from './duration.js';
export * from './random.js';
export * from './code-cache-stage.js';
export * from './iso-time.js';
export * from './release.js';
