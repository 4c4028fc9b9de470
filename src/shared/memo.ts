/**
 * `compute`, remembered per argument object for as long as that object lives (a WeakMap): for values derived
 * from a parsed record that several stages of one request or import need.
 */
export function memoisedPerObject<K extends object, V>(compute: (key: K) => V): (key: K) => V {
  const values = new WeakMap<K, V>();
  return (key) => {
    if (values.has(key)) return values.get(key) as V;
    const value = compute(key);
    values.set(key, value);
    return value;
  };
}
