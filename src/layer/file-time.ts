/**
 * An entry's modification time as GNU tar reads and sets it: whole seconds
 * (rounded towards minus infinity) and nanoseconds, never one fractional
 * number, which holds neither a PAX time's nanoseconds (a double has ~0.2 µs
 * at today's times) nor, through Node's fs, a time before 1970.
 *
 * @module
 */

/** A PAX `mtime` as GNU tar's `decode_timespec` takes it: `-?DIGITS(.DIGITS*)?`, nothing else. */
const PAX_TIME = /^(-?)(\d+)(?:\.(\d*))?$/;

/**
 * The whole seconds and nanoseconds of a PAX time value, as GNU tar reads
 * it: digits past the ninth are dropped, and a negative time is rounded
 * towards minus infinity (`-1.5` is second −2 and 500000000 ns). Undefined
 * for a value GNU tar refuses (it then keeps the header's time), and for
 * seconds beyond what a double holds exactly.
 */
export function paxTime(value: string): { sec: number; nsec: number } | undefined {
  const match = PAX_TIME.exec(value);
  if (match === null) return undefined;
  const negative = match[1] === '-';
  let sec = Number(match[2]);
  if (!Number.isSafeInteger(sec)) return undefined;
  const fraction = match[3] ?? '';
  let nsec = Number(fraction.slice(0, 9).padEnd(9, '0'));
  if (!negative) return { sec, nsec };
  sec = -sec;
  // GNU tar: "-1.10000000000001" is second -2 and 899999999 ns, i.e. truncated towards minus infinity.
  if (/[1-9]/.test(fraction.slice(9))) nsec++;
  if (nsec === 0) return { sec, nsec };
  return { sec: sec - 1, nsec: 1_000_000_000 - nsec };
}

/**
 * The time to give Node's `fs.utimes`, `futimes` and `lutimes` for `sec` and
 * `nsec`: a numeric string, which Node passes on as it is, where a negative
 * number would become the current time. libuv keeps microseconds only,
 * truncating towards zero: the value is put in the middle of the microsecond
 * that truncation takes to the one wanted (`nsec`'s, towards minus infinity),
 * so that a double's rounding cannot carry it over the edge.
 */
export function utimesArg(sec: number, nsec: number): string {
  const micros = Math.floor(nsec / 1000);
  if (micros === 0) return String(sec);
  return String(sec + (micros + (sec < 0 ? -0.5 : 0.5)) / 1e6);
}
