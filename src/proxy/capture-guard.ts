import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import type { StreamReader } from './api-adapter.js';
import type { CapturedReply } from './reply-capture.js';

/** Why a delivered reply was not stored. */
export type NotStoredReason = 'too_large' | 'unparseable' | 'encoding';

/**
 * Providers are untrusted: whatever they send, the client gets their bytes.
 * Capture works on a copy and can only fail itself: a reply it cannot parse
 * (`data: null`, `"tool_calls": "zz"`), one over `limit` bytes, or one in an
 * encoding it cannot decode is delivered and simply not stored. Compressed
 * replies are decoded for capture (the client still gets them compressed).
 */
export class GuardedCapture {
  private bytes = 0;
  private compressed: Buffer[] | undefined;
  private failed: NotStoredReason | undefined;

  constructor(
    private readonly reader: StreamReader,
    private readonly limit: number,
    private readonly encoding: string | undefined,
  ) {
    if (encoding && encoding !== 'identity') this.compressed = [];
  }

  write(chunk: Buffer): void {
    if (this.failed) return;
    this.bytes += chunk.length;
    if (this.bytes > this.limit) return this.fail('too_large');
    if (this.compressed) {
      this.compressed.push(chunk);
      return;
    }
    try {
      this.reader.write(chunk);
    } catch {
      this.fail('unparseable');
    }
  }

  /** The reply, or why there is none to store. */
  result(): { reply: CapturedReply; notStored?: undefined } | { reply?: undefined; notStored: NotStoredReason } {
    if (this.compressed && !this.failed) {
      let decoded: Buffer | undefined;
      try {
        decoded = decode(Buffer.concat(this.compressed), this.encoding!, this.limit);
      } catch {
        this.fail('encoding');
      }
      if (decoded) {
        try {
          this.reader.write(decoded);
        } catch {
          this.fail('unparseable');
        }
      }
    }
    if (this.failed) return { notStored: this.failed };
    try {
      return { reply: this.reader.result() };
    } catch {
      return { notStored: 'unparseable' };
    }
  }

  private fail(reason: NotStoredReason): void {
    this.failed = reason;
    this.compressed = undefined;
  }
}

/** A whole body, decoded per its Content-Encoding, at most `limit` bytes decoded (a zip bomb is not stored). */
export function decode(body: Buffer, encoding: string, limit: number): Buffer {
  const options = { maxOutputLength: limit };
  switch (encoding.trim().toLowerCase()) {
    case 'identity':
    case '':
      return body;
    case 'gzip':
    case 'x-gzip':
      return gunzipSync(body, options);
    case 'deflate':
      return inflateSync(body, options);
    case 'br':
      return brotliDecompressSync(body, options);
    default:
      throw new Error(`unsupported content-encoding ${encoding}`);
  }
}

/** A stream reader over a whole non-streamed body, so both paths share the guard. */
export function wholeBodyReader(capture: (body: Buffer) => CapturedReply | undefined): StreamReader & { empty: boolean } {
  const chunks: Buffer[] = [];
  const reader = {
    empty: false,
    write: (bytes: Uint8Array) => void chunks.push(Buffer.from(bytes)),
    result: (): CapturedReply => {
      const reply = capture(Buffer.concat(chunks));
      if (!reply) throw new Error('not a reply');
      return reply;
    },
  };
  return reader;
}
