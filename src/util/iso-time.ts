/**
 * ISO 8601 UTC timestamps without `Date`'s time-zone machinery.
 *
 * @module
 */

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/**
 * `ms` (milliseconds since the epoch, `Date.now()` by default) as
 * `Date.prototype.toISOString` writes it (`2026-12-04T19:51:02.123Z`), for
 * years 0 to 9999. Computed here: V8's first `Date` that formats loads the
 * local time zone (ICU's data and `/etc/localtime`), 0.2 ms and, with a cold
 * page cache, tens of milliseconds, on a container's start path.
 */
export function isoTime(ms: number = Date.now()): string {
  const days = Math.floor(ms / 86_400_000);
  const inDay = ms - days * 86_400_000;
  // Civil date from days since 1970-01-01 (H. Hinnant's algorithm): eras of 400 years from 0000-03-01.
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  const h = Math.floor(inDay / 3_600_000);
  const m = Math.floor((inDay % 3_600_000) / 60_000);
  const s = Math.floor((inDay % 60_000) / 1000);
  return `${pad(year, 4)}-${pad(month)}-${pad(day)}T${pad(h)}:${pad(m)}:${pad(s)}.${pad(inDay % 1000, 3)}Z`;
}
