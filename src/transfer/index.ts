/**
 * Transfer: the registry client and its HTTP transport, and OCI-layout and
 * docker-archive import/export.
 *
 * @module
 */

export { httpRequest } from './http.js';
export type { HttpRequest, HttpResponse } from './http.js';
