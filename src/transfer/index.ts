/**
 * Transfer: registries (pull, push) and archives (import, export), written
 * against the store's interfaces; and the HTTP transport the builder's `ADD <url>` uses.
 *
 * @module
 */

export { pullImage } from './pull.js';
export { pushImage } from './push.js';
export { importImage, exportImage, applyChanges, CHANGE_INSTRUCTIONS } from './archive/index.js';
export type {
  ArchiveProgress,
  ExportFormat,
  ExportOptions,
  ExportResult,
  ImportedImage,
  ImportFormat,
  ImportOptions,
} from './archive/index.js';
export type {
  PullLayerState,
  PullOptions,
  PullProgress,
  PullResult,
  PushBlobState,
  PushOptions,
  PushProgress,
  PushResult,
  RegistryCredentials,
} from './types.js';
export { httpRequest } from './http.js';
export type { HttpRequest, HttpResponse } from './http.js';
export { login, logout } from './login.js';
export type { LoginOptions, LoginResult } from './login.js';
export type { AuthFileOptions } from './auth-config.js';
