export { locateHelper, nativeBuildDir } from './locate.js';
export { CONFIG_FD_OPTION, HELPER_OPS, HELPER_PROTOCOL_VERSION, StatusLineDecoder, encodeConfig, parseStatusLine } from './protocol.js';
export type { HelperOp, HelperStatus, ExitedStatus, ErrorStatus, NetnsStatus, TeardownStatus } from './protocol.js';
export { HelperProcess, errorFromStatus, moveForked, preloadSpawn, removeTreesForked, runHelperOp, spawnHelper, startDetachedRemover, startHelper } from './spawn.js';
export type { DetachedRemover, HelperChild, HelperExit, HelperStdio, SpawnHelperOptions } from './spawn.js';
export { FORK_SERVER_ENV, ForkServer, ForkedChild } from './fork-server.js';
export type { ForkRequest } from './fork-server.js';
export { sealedHelperPath } from './sealed.js';
export { readXattrs } from './xattrs.js';
export { spreadSubdirs } from './topdir.js';
export type { ReadXattrsOptions, XattrMap } from './xattrs.js';
export {
  HOST_NAME_MAX,
  MAX_ARG_STRLEN,
  PATH_MAX,
  checkExecSize,
  checkExecString,
  execArgLimit,
  ownStackLimit,
  shown,
} from './exec-limits.js';
export type { ExecString } from './exec-limits.js';
export {
  SUBORDINATE_IDS,
  callerSubordinateUserns,
  mapsMoreThanRoot,
  parseSubIds,
  readUsernsHost,
  rootIsCaller,
  spawnInUserns,
  subordinateMaps,
  subordinateUserns,
  usernsArgs,
  withMappers,
} from './userns.js';
export type { IdMap, SpawnInUsernsOptions, SubIdRange, UsernsHost, UsernsMaps } from './userns.js';
