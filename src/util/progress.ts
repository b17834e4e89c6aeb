/**
 * The shape every progress event shares: `op` names the long operation that
 * sent it (`pull`, `push`, `snapshot`, `import`, `export`, `build`), `type`
 * what happened. One listener can take events of several operations and tell
 * them apart by `op`, then by `type`.
 *
 * @module
 */

/** What every progress event carries besides its own fields. */
export interface ProgressBase<Op extends string> {
  /** The operation that sent the event. */
  op: Op;
}

/** An event as its operation writes it: everything but the `op` the emitter adds. */
export type WithoutOp<E> = E extends unknown ? Omit<E, 'op'> : never;

/**
 * A function that hands events to `listener` with `op` filled in, or
 * `undefined` when there is no listener (so callers write `emit?.(…)`).
 */
export function progressEmitter<E extends { op: string }>(
  op: E['op'],
  listener: ((event: E) => void) | undefined,
): ((event: WithoutOp<E>) => void) | undefined {
  if (listener === undefined) return undefined;
  return (event) => listener({ ...event, op } as unknown as E);
}
