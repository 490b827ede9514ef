/**
 * Unique, language-like texts for the benchmarks. Words are drawn at random (seeded, so runs
 * repeat) from a 5,000-word vocabulary with Zipf's law, as words are in natural language: a few
 * very common, most rare. Every text is numbered, so no two are equal and no per-text cache
 * (token counts, stems, hashes) can hit its way past the work. (An earlier generator stepped
 * through the vocabulary arithmetically, so texts k apart were shifted copies of each other:
 * near-duplicates made plain statements trigger recall, which real chat rarely does.)
 */
const VOCABULARY = Array.from({ length: 5_000 }, (_, index) => `w${index.toString(36)}${'aeiou'[index % 5]}`);

/** Cumulative Zipf weights (s = 1) over the vocabulary's ranks. */
const CUMULATIVE = (() => {
  const weights = VOCABULARY.map((_, rank) => 1 / (rank + 1));
  const total = weights.reduce((sum, weight) => sum + weight, 0);
  let running = 0;
  return weights.map((weight) => (running += weight / total));
})();

/** A seeded generator (mulberry32): the same texts on every run. */
export function randomSource(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function word(random: () => number): string {
  const target = random();
  let low = 0;
  let high = CUMULATIVE.length - 1;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (CUMULATIVE[middle]! < target) low = middle + 1;
    else high = middle;
  }
  return VOCABULARY[low]!;
}

/** `label n:` and 30–60 Zipf-drawn words. */
export function textMaker(label: string, seed: number): () => string {
  const random = randomSource(seed);
  let made = 0;
  return () => {
    const count = 30 + Math.floor(random() * 31);
    const words: string[] = [`${label} ${++made}:`];
    for (let index = 0; index < count; index++) words.push(word(random));
    return words.join(' ');
  };
}

/** A message no earlier request sent. */
export const uniqueMessage = textMaker('message', 1);
