export { locateHelper, nativeBuildDir } from './locate.js';
export { HELPER_OPS, HELPER_PROTOCOL_VERSION, StatusLineDecoder, parseStatusLine } from './protocol.js';
export type { HelperOp, HelperStatus, ExitedStatus, ErrorStatus } from './protocol.js';
export { HelperProcess, errorFromStatus, runHelperOp, spawnHelper } from './spawn.js';
export type { HelperExit, HelperStdio, SpawnHelperOptions } from './spawn.js';
export { sealedHelperPath } from './sealed.js';
export { readXattrs } from './xattrs.js';
export type { ReadXattrsOptions, XattrMap } from './xattrs.js';
