import type { UpstreamClient } from '../upstream/client.js';
import { upstreamTarget } from '../upstream/headers.js';

export interface EmbeddingResult {
  vectors: Float32Array[];
  inputTokens: number;
}

/** Turns texts into vectors. The seam for the upstream's /v1/embeddings (or anything else). */
export interface Embedder {
  embed(
    texts: string[],
    options: { model: string; dimensions: number },
    context: { headers: Record<string, string | string[]>; signal: AbortSignal },
  ): Promise<EmbeddingResult>;
}

export class UpstreamEmbedder implements Embedder {
  constructor(
    private readonly upstream: UpstreamClient,
    private readonly upstreamUrl: () => string,
  ) {}

  async embed(
    texts: string[],
    options: { model: string; dimensions: number },
    context: { headers: Record<string, string | string[]>; signal: AbortSignal },
  ): Promise<EmbeddingResult> {
    const response = await this.upstream({
      url: upstreamTarget(this.upstreamUrl(), '/v1/embeddings'),
      method: 'POST',
      headers: { ...context.headers, 'content-type': 'application/json', 'accept-encoding': 'identity' },
      body: JSON.stringify({ model: options.model, input: texts, dimensions: options.dimensions, encoding_format: 'float' }),
      signal: context.signal,
    });
    const chunks: Buffer[] = [];
    for await (const chunk of response.body) chunks.push(chunk);
    const text = Buffer.concat(chunks).toString('utf8');
    if (response.status < 200 || response.status >= 300) throw new Error(`embeddings got HTTP ${response.status}: ${text.slice(0, 200)}`);
    const parsed = JSON.parse(text) as { data?: Array<{ index: number; embedding: number[] }>; usage?: { prompt_tokens?: number } };
    const data = [...(parsed.data ?? [])].sort((a, b) => a.index - b.index);
    if (data.length !== texts.length) throw new Error(`embeddings returned ${data.length} vectors for ${texts.length} inputs`);
    return { vectors: data.map((item) => normalize(Float32Array.from(item.embedding))), inputTokens: parsed.usage?.prompt_tokens ?? 0 };
  }
}

/** Unit length, so cosine similarity is a dot product. */
export function normalize(vector: Float32Array): Float32Array {
  let norm = 0;
  for (const value of vector) norm += value * value;
  norm = Math.sqrt(norm) || 1;
  return vector.map((value) => value / norm);
}

/** `a` · the vector of `a`'s length at `offset` in `rows` (a segment's vectors, end to end). */
export function dotAt(a: Float32Array, rows: Float32Array, offset: number): number {
  const length = Math.min(a.length, rows.length - offset);
  let total = 0;
  for (let index = 0; index < length; index++) total += a[index]! * rows[offset + index]!;
  return total;
}

/** A fold's vectors as one side record: message indices and the vectors packed as base64 float32. */
export interface EmbeddingSegment {
  indices: number[];
  dimensions: number;
  vectors: string;
}

export function packSegment(indices: number[], vectors: Float32Array[]): EmbeddingSegment {
  const dimensions = vectors[0]?.length ?? 0;
  const packed = new Float32Array(indices.length * dimensions);
  vectors.forEach((vector, row) => packed.set(vector, row * dimensions));
  return { indices, dimensions, vectors: Buffer.from(packed.buffer).toString('base64') };
}

/** A segment decoded: its passages' ids and their vectors end to end, `dimensions` apiece. */
export interface UnpackedSegment {
  indices: readonly number[];
  dimensions: number;
  vectors: Float32Array;
  /** Its size in memory, for the index cache. */
  bytes: number;
}

export function unpackSegment(segment: EmbeddingSegment): UnpackedSegment {
  const bytes = Buffer.from(segment.vectors, 'base64');
  // Copied out of the decode buffer (Node's pool may share it), so a cached segment holds only itself.
  const vectors = new Float32Array(bytes.byteLength / 4);
  new Uint8Array(vectors.buffer).set(bytes);
  return { indices: segment.indices, dimensions: segment.dimensions, vectors, bytes: vectors.byteLength + segment.indices.length * 8 };
}
