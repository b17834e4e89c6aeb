/**
 * The firewall of root networks: one nftables table of ours, `inet dockless`,
 * made with the first network and deleted with the last. Its rules never
 * change; a network is elements of its sets (its bridge, its subnet to
 * masquerade), so adding or removing one is an element update, applied with
 * the table's declaration in one `nft -f` transaction. Nothing outside the
 * table is read or written.
 *
 * @module
 */

import { spawn } from 'node:child_process';
import { HelperError, NotFoundError } from '../errors.js';

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
}

/**
 * The table with its rules. Declaring a chain's rules again would add them
 * twice, so this is applied only with the first network, after an empty
 * declaration and a delete (a table a crash left behind is replaced whole, in
 * the same transaction). Traffic inside one bridge is
 * bridged, not forwarded (unless br_netfilter is loaded: then `@same` lets it
 * through); between two of our bridges it is dropped (isolation); in or out of
 * an internal network's bridge it is dropped; leaving through any other
 * interface from a non-internal subnet it is masqueraded.
 */
export function tableScript(): string {
  return `table ${NFT_TABLE} {
  set bridges { type ifname; }
  set same { type ifname . ifname; }
  set internal { type ifname; }
  set masq4 { type ipv4_addr; flags interval; }
  set masq6 { type ipv6_addr; flags interval; }
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname . oifname @same accept
    iifname @internal drop
    oifname @internal drop
    iifname @bridges oifname @bridges drop
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr @masq4 oifname != @bridges masquerade
    ip6 saddr @masq6 oifname != @bridges masquerade
  }
}
`;
}

function elements(verb: 'add' | 'delete', n: NftNetwork): string {
  const b = JSON.stringify(n.bridge);
  const lines = [`${verb} element ${NFT_TABLE} bridges { ${b} }`, `${verb} element ${NFT_TABLE} same { ${b} . ${b} }`];
  if (n.internal) lines.push(`${verb} element ${NFT_TABLE} internal { ${b} }`);
  else {
    lines.push(`${verb} element ${NFT_TABLE} masq4 { ${n.subnet} }`);
    if (n.subnet6 !== undefined) lines.push(`${verb} element ${NFT_TABLE} masq6 { ${n.subnet6} }`);
  }
  return lines.join('\n') + '\n';
}

const DROP_TABLE = `table ${NFT_TABLE} {}\ndelete table ${NFT_TABLE}\n`;

/** The script that adds network `n`; with `first`, the table is made (anew) with it. */
export function addNetworkScript(n: NftNetwork, first: boolean): string {
  return (first ? DROP_TABLE + tableScript() : '') + elements('add', n);
}

/** The script that removes network `n`; with `last`, the whole table goes instead. */
export function removeNetworkScript(n: NftNetwork, last: boolean): string {
  // Declared empty first, so that deleting is no error when the table is already gone.
  return last ? DROP_TABLE : elements('delete', n);
}

/**
 * Applies `script` atomically with `nft -f -`.
 *
 * @throws {@link NotFoundError} when `nft` is not installed (Debian package `nftables`).
 * @throws {@link HelperError} when nft refuses the script (its stderr in the message).
 */
export async function applyNft(script: string, context: string): Promise<void> {
  const child = spawn('nft', ['-f', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdin.on('error', () => undefined);
  child.stdin.end(script);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c) => resolve(c));
  }).catch((cause: NodeJS.ErrnoException) => {
    if (cause.code === 'ENOENT') throw new NotFoundError(`${context}: spawn \`nft\`: ENOENT (install the nftables package)`, { cause });
    throw cause;
  });
  if (code !== 0) {
    throw new HelperError(`${context}: nft -f: ${stderr.trim().split('\n').slice(0, 3).join('; ') || `exit ${String(code)}`}`, {
      op: 'nft',
      ...(code !== null ? { exitCode: code } : {}),
      stderr,
    });
  }
}
