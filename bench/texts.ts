/**
 * A message no earlier request sent: 30–60 words drawn from a 1,000-word vocabulary, numbered.
 * Fixed texts let every per-text cache (token counts, stems, hashes) hit and hide their cost.
 */
const VOCABULARY = Array.from({ length: 1_000 }, (_, index) => `w${(index * 7_919) % 10_007}${'abcdefghij'[index % 10]}`);
let sent = 0;

export function uniqueMessage(): string {
  const count = 30 + (sent % 31);
  const words: string[] = [`message ${++sent}:`];
  for (let index = 0; index < count; index++) words.push(VOCABULARY[(sent * 31 + index * 17) % VOCABULARY.length]!);
  return words.join(' ');
}
