/**
 * The one eviction rule of the agent's small caches (peer facts, host keys, verified binds):
 * a Map in use order, at most `limit` entries, the least recently remembered dropped first.
 */

/** Sets `key` as the most recent entry of `map`, dropping the oldest when `limit` is reached. */
export function rememberBounded<K, V>(map: Map<K, V>, key: K, value: V, limit: number): void {
  map.delete(key);
  if (map.size >= limit) {
    const oldest = map.keys().next();
    if (oldest.done !== true) map.delete(oldest.value);
  }
  map.set(key, value);
}
