/**
 * `dockless/testing`: containers for tests, in the manner of testcontainers
 * and with no daemon. `startContainer()` starts one and waits until it is
 * ready (a {@link Wait} strategy, one deadline); the handle it returns gives
 * the published ports' host and ports and is removed by `await using`.
 *
 * @example
 * ```ts
 * import { Runtime } from 'dockless';
 * import { startContainer, Wait } from 'dockless/testing';
 *
 * await using web = await startContainer(runtime, { image: 'nginx:1', ports: [80], wait: Wait.forHttp('/', 80) });
 * await fetch(web.url(80));
 *
 * // Warm once, fork many: migrate once, then one copy-on-write clone per test.
 * const db = await startContainer(runtime, { rootfs, cmd: ['postgres', '-D', '/data'], wait: Wait.forLogMessage('ready to accept') });
 * await db.exec(['psql', '-f', '/migrations.sql']);
 * await using prepared = await db.snapshot();
 * await using mine = await prepared.clone(); // migrated; its writes are its own
 * ```
 *
 * @packageDocumentation
 */

export { startContainer, StartedContainer, PreparedContainer } from './start.js';
export type { CloneContainerOptions, FileToCopy, StartContainerOptions } from './start.js';
export type { ReuseOptions } from './reuse.js';
export { Wait } from './wait.js';
export type { ExitWaitOptions, HttpWaitOptions, WaitContext, WaitStrategy } from './wait.js';
export { parseProcNet } from './proc-net.js';
export type { ProcNetSocket } from './proc-net.js';
export { startGroup, StartedGroup } from './group.js';
export type { GroupService, StartGroupOptions } from './group.js';
export { startRedis, StartedRedis } from './redis.js';
export type { RedisOptions } from './redis.js';
export { startPostgres, StartedPostgres } from './postgres.js';
export type { PostgresOptions } from './postgres.js';
export { createProxy, Proxy } from './proxy.js';
export type {
  ActiveToxic,
  BandwidthToxic,
  LatencyToxic,
  ProxyOptions,
  ProxyUpstream,
  ResetPeerToxic,
  SlicerToxic,
  TimeoutToxic,
  Toxic,
  ToxicCommon,
  ToxicKind,
  ToxicStream,
} from './proxy.js';
export { partition } from './partition.js';
export type { Partition, PartitionTarget } from './partition.js';
