import { InvalidArgumentError, NotFoundError } from '../errors.js';
import { readFileInRoot } from './in-root.js';

/** The credentials a container's command runs with. */
export interface ResolvedUser {
  uid: number;
  gid: number;
  /** Supplementary groups. */
  groups: number[];
  /** Home directory from /etc/passwd, when the user is listed there. */
  home?: string;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

const NUMERIC = /^\d+$/;
const MAX_ID = 0xffff_fffe;

/** Parses /etc/passwd content; malformed lines are skipped as libc does. */
export function parsePasswd(content: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of content.split('\n')) {
    const fields = line.split(':');
    if (fields.length < 7 || !NUMERIC.test(fields[2]!) || !NUMERIC.test(fields[3]!)) continue;
    out.push({ name: fields[0]!, uid: Number(fields[2]), gid: Number(fields[3]), home: fields[5]! });
  }
  return out;
}

/** Parses /etc/group content; malformed lines are skipped. */
export function parseGroup(content: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of content.split('\n')) {
    const fields = line.split(':');
    if (fields.length < 4 || !NUMERIC.test(fields[2]!)) continue;
    out.push({ name: fields[0]!, gid: Number(fields[2]), members: fields[3]!.split(',').filter(Boolean) });
  }
  return out;
}

function parseId(text: string, what: string, spec: string): number {
  const id = Number(text);
  if (!Number.isSafeInteger(id) || id > MAX_ID) {
    throw new InvalidArgumentError(`user \`${spec}\`: ${what} ${text} is out of range`);
  }
  return id;
}

/**
 * Resolves a Docker-style user spec (`uid`, `uid:gid`, `name`, `name:group`)
 * against the passwd and group files of a rootfs, as Docker does: a numeric uid
 * need not be listed; a name must be; the primary group comes from passwd unless
 * given; supplementary groups are those listing the user by name.
 *
 * @throws {@link InvalidArgumentError} for a malformed spec.
 * @throws {@link NotFoundError} for a user or group name that the rootfs does not list.
 */
export function resolveUserFrom(spec: string, passwd: string, group: string): ResolvedUser {
  if (spec === '' || spec.split(':').length > 2) throw new InvalidArgumentError(`user \`${spec}\`: expected uid[:gid] or name[:group]`);
  const [userPart, groupPart] = spec.split(':') as [string, string | undefined];
  if (userPart === '') throw new InvalidArgumentError(`user \`${spec}\`: empty user`);
  const users = parsePasswd(passwd);
  const groups = parseGroup(group);
  let entry: PasswdEntry | undefined;
  let uid: number;
  if (NUMERIC.test(userPart)) {
    uid = parseId(userPart, 'uid', spec);
    entry = users.find((u) => u.uid === uid);
  } else {
    entry = users.find((u) => u.name === userPart);
    if (entry === undefined) throw new NotFoundError(`user \`${spec}\`: no user \`${userPart}\` in the rootfs' /etc/passwd`);
    uid = entry.uid;
  }
  let gid = entry?.gid ?? 0;
  if (groupPart !== undefined) {
    if (groupPart === '') throw new InvalidArgumentError(`user \`${spec}\`: empty group`);
    if (NUMERIC.test(groupPart)) gid = parseId(groupPart, 'gid', spec);
    else {
      const g = groups.find((x) => x.name === groupPart);
      if (g === undefined) throw new NotFoundError(`user \`${spec}\`: no group \`${groupPart}\` in the rootfs' /etc/group`);
      gid = g.gid;
    }
  }
  const supplementary =
    entry === undefined ? [] : groups.filter((g) => g.members.includes(entry.name) && g.gid !== gid).map((g) => g.gid);
  return { uid, gid, groups: [...new Set(supplementary)], ...(entry !== undefined ? { home: entry.home } : {}) };
}

/**
 * {@link resolveUserFrom} for a rootfs directory or an image's layers, top-most
 * first, read safely inside them: each file is read from the top-most layer that has it (an approximation of the merged
 * view that ignores whiteouts of /etc/passwd, which images do not make).
 */
export async function resolveUserInLayers(layers: readonly string[], spec: string): Promise<ResolvedUser> {
  const find = async (path: string) => {
    for (const layer of layers) {
      const text = await readFileInRoot(layer, path);
      if (text !== undefined) return text;
    }
    return '';
  };
  const [passwd, group] = await Promise.all([find('/etc/passwd'), find('/etc/group')]);
  return resolveUserFrom(spec, passwd, group);
}
