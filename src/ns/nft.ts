/**
 * The firewall of root networks: one nftables table of ours, `inet dockless`,
 * made with the first network and deleted with the last, in the network
 * namespace (the host's, or a test's). Its rules never change; a network is
 * elements of its sets (its bridge, its subnet to masquerade), so adding or
 * removing one is an element update, each one `nft -f` transaction. Nothing
 * outside the table is read or written. The table is shared by every state
 * directory of the host, so its changes take a host-wide lock of their own,
 * and "last" means no bridge left in its `bridges` set. A rootless user's
 * networks have the same table in that user's network namespace (see
 * rootless-netns.ts), changed through `nsenter` as root of its user namespace,
 * under the networks' lock of the state directory that owns it.
 *
 * @module
 */

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { HelperError, NotFoundError } from '../errors.js';
import { withLock } from '../store/index.js';

/** The lock of the table's changes: host-wide, not per state directory. */
const NFT_LOCK = '/run/lock/dockless-nft';

/** Our table's family and name. */
export const NFT_TABLE = 'inet dockless';

/** What the table needs to know of one network. */
export interface NftNetwork {
  /** Its bridge. */
  bridge: string;
  /** Its IPv4 subnet. */
  subnet: string;
  /** Its IPv6 subnet, if any. */
  subnet6?: string;
  /** No traffic forwarded in or out, no masquerade. */
  internal: boolean;
  /**
   * The state directory whose network it is (root networks): written as the
   * comment of the bridge's element, so that `prune()` can tell the bridge is
   * ours and remove it once that directory is gone.
   */
  owner?: string;
}

/** nft refuses a longer element comment. */
const COMMENT_MAX = 128;

/**
 * The comment of a network's `bridges` element: how to remove its elements
 * and which state directory owns it (`SUBNET SUBNET6|- internal|- DIR`).
 * Undefined when the directory cannot be written in one (too long, or with a
 * quote): then the bridge is left to its state directory alone.
 */
export function ownerComment(n: NftNetwork): string | undefined {
  if (n.owner === undefined) return undefined;
  const comment = `${n.subnet} ${n.subnet6 ?? '-'} ${n.internal ? 'internal' : '-'} ${n.owner}`;
  return comment.length <= COMMENT_MAX && !/["\\\n]/.test(comment) && n.owner.startsWith('/') ? comment : undefined;
}

/** The network a `bridges` element's comment describes ({@link ownerComment}), or undefined for a comment not ours. */
export function parseOwnerComment(bridge: string, comment: string): NftNetwork | undefined {
  const m = /^(\d+\.\d+\.\d+\.\d+\/\d+) (\S+) (internal|-) (\/.*)$/.exec(comment);
  if (m === null) return undefined;
  return { bridge, subnet: m[1]!, ...(m[2] !== '-' ? { subnet6: m[2]! } : {}), internal: m[3] === 'internal', owner: m[4]! };
}

const SETS = `table ${NFT_TABLE} {
  set bridges { type ifname; }
  set same { type ifname . ifname; }
  set internal { type ifname; }
  set masq4 { type ipv4_addr; flags interval; }
  set masq6 { type ipv6_addr; flags interval; }
}
`;

/**
 * The table, made or repaired: declaring an existing table, set or chain
 * again keeps it (and the sets' elements), and our two chains are flushed
 * and filled anew in the same transaction, so the rules are never doubled.
 * Traffic inside one bridge is bridged, not forwarded (unless br_netfilter is
 * loaded: then `@same` lets it through); between two of our bridges it is
 * dropped (isolation); in or out of an internal network's bridge it is
 * dropped; leaving through any other interface from a non-internal subnet it
 * is masqueraded.
 */
export function tableScript(): string {
  const t = NFT_TABLE;
  return `${SETS}table ${t} {
  chain forward { type filter hook forward priority filter; policy accept; }
  chain postrouting { type nat hook postrouting priority srcnat; policy accept; }
}
flush chain ${t} forward
flush chain ${t} postrouting
add rule ${t} forward iifname . oifname @same accept
add rule ${t} forward iifname @internal drop
add rule ${t} forward oifname @internal drop
add rule ${t} forward iifname @bridges oifname @bridges drop
add rule ${t} postrouting ip saddr @masq4 oifname != @bridges masquerade
add rule ${t} postrouting ip6 saddr @masq6 oifname != @bridges masquerade
`;
}

function elements(verb: 'add' | 'delete', n: NftNetwork): string {
  const b = JSON.stringify(n.bridge);
  const comment = verb === 'add' ? ownerComment(n) : undefined;
  const lines = [`${verb} element ${NFT_TABLE} bridges { ${b}${comment !== undefined ? ` comment "${comment}"` : ''} }`, `${verb} element ${NFT_TABLE} same { ${b} . ${b} }`];
  if (n.internal) lines.push(`${verb} element ${NFT_TABLE} internal { ${b} }`);
  else {
    lines.push(`${verb} element ${NFT_TABLE} masq4 { ${n.subnet} }`);
    if (n.subnet6 !== undefined) lines.push(`${verb} element ${NFT_TABLE} masq6 { ${n.subnet6} }`);
  }
  return lines.join('\n') + '\n';
}

/** The script that adds network `n`'s elements, making (or repairing) the table first. */
export function addNetworkScript(n: NftNetwork): string {
  return tableScript() + elements('add', n);
}

/**
 * The script that removes network `n`'s elements. They are added first, in
 * the same transaction (adding a present element is no error), so that
 * removing them is no error when a crash or an earlier try already did.
 */
export function removeNetworkScript(n: NftNetwork): string {
  return SETS + elements('add', n) + elements('delete', n);
}

/** The script that deletes the table. */
export function dropTableScript(): string {
  return `table ${NFT_TABLE} {}\ndelete table ${NFT_TABLE}\n`;
}

/**
 * Applies `script` atomically with `nft -f -`.
 *
 * @throws {@link NotFoundError} when `nft` is not installed (Debian package `nftables`).
 * @throws {@link HelperError} when nft refuses the script (its stderr in the message).
 */
export async function applyNft(script: string, context: string, inside?: number): Promise<void> {
  await nft(['-f', '-'], script, context, inside);
}

/** `name` in the system's binary directories (a user's PATH often lacks the sbin ones, where nft is), else as it is. */
function binary(name: string): string {
  return ['/usr/sbin', '/usr/bin', '/sbin', '/bin'].map((d) => `${d}/${name}`).find((p) => existsSync(p)) ?? name;
}

async function nft(args: string[], input: string, context: string, inside?: number): Promise<string> {
  const argv =
    inside === undefined
      ? ['nft', ...args]
      : [binary('nsenter'), `--target=${inside}`, '--user', '--net', '--preserve-credentials', binary('nft'), ...args];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdin.on('error', () => undefined);
  child.stdin.end(input);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c) => resolve(c));
  }).catch((cause: NodeJS.ErrnoException) => {
    if (cause.code === 'ENOENT') throw new NotFoundError(`${context}: spawn \`${argv[0]!}\`: ENOENT (install the nftables package)`, { cause });
    throw cause;
  });
  if (code !== 0) {
    throw new HelperError(`${context}: nft ${args.join(' ')}: ${stderr.trim().split('\n').slice(0, 3).join('; ') || `exit ${String(code)}`}`, {
      op: 'nft',
      ...(code !== null ? { exitCode: code } : {}),
      stderr,
    });
  }
  return stdout;
}

/**
 * Adds network `n` to the table, making the table when it is the first.
 * `inside`: the pid holding a rootless user's network namespace, whose table it is.
 */
export async function nftAddNetwork(n: NftNetwork, context: string, inside?: number): Promise<void> {
  if (inside !== undefined) return applyNft(addNetworkScript(n), context, inside);
  await mkdir('/run/lock', { recursive: true });
  await withLock(NFT_LOCK, () => applyNft(addNetworkScript(n), context));
}

/** Removes network `n` from the table, and the table with the last bridge; `inside` as {@link nftAddNetwork}'s. */
export async function nftRemoveNetwork(n: NftNetwork, context: string, inside?: number): Promise<void> {
  if (inside !== undefined) return applyNft(removeNetworkScript(n), context, inside);
  await mkdir('/run/lock', { recursive: true });
  await withLock(NFT_LOCK, async () => {
    await applyNft(removeNetworkScript(n), context);
    const listed = await nft(['-j', 'list', 'set', ...NFT_TABLE.split(' '), 'bridges'], '', context);
    if (!listed.includes('"elem"')) await applyNft(dropTableScript(), context);
  });
}

/** One element of our table's `bridges` set. */
export interface NftBridge {
  /** The bridge's name. */
  name: string;
  /** What its comment says of its network and owner, when it has one of ours. */
  network?: NftNetwork;
}

/**
 * The bridges in our table's `bridges` set: empty when there is no table (or
 * no `nft`), for the audit.
 */
export async function nftBridges(context: string): Promise<NftBridge[]> {
  let listed: string;
  try {
    listed = await nft(['-j', 'list', 'set', ...NFT_TABLE.split(' '), 'bridges'], '', context);
  } catch {
    return [];
  }
  return parseBridges(listed);
}

/** The elements of `nft -j list set … bridges` output: a plain name, or `{ elem: { val, comment } }` for one with a comment. */
export function parseBridges(listed: string): NftBridge[] {
  const parsed = JSON.parse(listed) as { nftables?: { set?: { elem?: unknown[] } }[] };
  const elems = parsed.nftables?.find((x) => x.set !== undefined)?.set?.elem ?? [];
  const bridges: NftBridge[] = [];
  for (const e of elems) {
    if (typeof e === 'string') bridges.push({ name: e });
    else {
      const { val, comment } = (e as { elem?: { val?: unknown; comment?: unknown } }).elem ?? {};
      if (typeof val !== 'string') continue;
      const network = typeof comment === 'string' ? parseOwnerComment(val, comment) : undefined;
      bridges.push({ name: val, ...(network !== undefined ? { network } : {}) });
    }
  }
  return bridges;
}

/**
 * Whether any interface (a container's veth) is enslaved to `bridge` in this
 * network namespace; true when `ip` cannot tell, so that nothing in doubt is
 * removed.
 */
export async function hasMembers(bridge: string): Promise<boolean> {
  const dev = await readFile('/proc/self/net/dev', 'utf8').catch(() => '');
  if (!dev.split('\n').some((l) => l.split(':')[0]!.trim() === bridge)) return false;
  const child = spawn(binary('ip'), ['-o', 'link', 'show', 'master', bridge], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const code = await new Promise<number | null>((resolve) => {
    child.on('error', () => resolve(-1));
    child.on('close', (c) => resolve(c));
  });
  return code !== 0 || out.trim() !== '';
}

/**
 * Removes the networks whose owning state directory (their element's
 * comment) is gone and whose bridge has no member: `deleteBridge` takes the bridge, then their elements go,
 * and the table with the last one; under the table's lock. Returns the
 * bridges removed. A bridge without such a comment (made before owners were
 * written, or a rootless user's) is never taken.
 */
export async function nftPruneOrphans(context: string, isGone: (stateDir: string) => Promise<boolean>, deleteBridge: (bridge: string) => Promise<void>): Promise<string[]> {
  await mkdir('/run/lock', { recursive: true });
  return withLock(NFT_LOCK, async () => {
    const removed: string[] = [];
    const bridges = await nftBridges(context);
    for (const { name, network } of bridges) {
      if (network?.owner === undefined || !(await isGone(network.owner))) continue;
      // A state directory in another mount namespace looks gone from here: a bridge with a member is in use.
      if (await hasMembers(name)) continue;
      await deleteBridge(name);
      await applyNft(removeNetworkScript(network), context);
      removed.push(name);
    }
    if (removed.length > 0 && (await nftBridges(context)).length === 0) await applyNft(dropTableScript(), context);
    return removed;
  });
}
