/**
 * Plain string order (UTF-16 code units), as Go's sort.Strings gives Docker's listings, and the
 * same on every machine. `localeCompare` orders by the locale instead, and its first call in a
 * process loads ICU's collator: 6 ms, paid by every `run` in a store of two containers or more.
 */
export function byText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
