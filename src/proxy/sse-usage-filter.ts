/**
 * Splits an SSE byte stream at event boundaries and drops the usage-only chunk
 * (`"choices":[]` with `usage`) that mnemo itself asked for. Each kept event
 * goes out as the exact bytes the provider sent; only a partial event at the
 * end of a read waits for the rest of itself.
 */
export class UsageChunkFilter {
  private pending: Buffer = Buffer.alloc(0);

  /** Returns the bytes to forward now (possibly empty). */
  write(bytes: Buffer): Buffer {
    this.pending = this.pending.length === 0 ? bytes : Buffer.concat([this.pending, bytes]);
    const out: Buffer[] = [];
    let start = 0;
    for (;;) {
      const end = eventEnd(this.pending, start);
      if (end < 0) break;
      const event = this.pending.subarray(start, end);
      if (!isUsageOnly(event)) out.push(event);
      start = end;
    }
    this.pending = this.pending.subarray(start);
    return out.length === 1 ? out[0]! : Buffer.concat(out);
  }

  /** Whatever is left when the stream ends (an unterminated last event). */
  flush(): Buffer {
    const rest = this.pending;
    this.pending = Buffer.alloc(0);
    return rest;
  }
}

const LF = 0x0a;
const USAGE = Buffer.from('"usage"');
const CR = 0x0d;

/** Index just past the blank line ending the event that starts at `from`, or -1. */
function eventEnd(buffer: Buffer, from: number): number {
  // indexOf jumps from line end to line end natively; a byte-by-byte loop in JS read every byte.
  for (let index = buffer.indexOf(LF, from); index >= 0; index = buffer.indexOf(LF, index + 1)) {
    const next = buffer[index + 1];
    if (next === LF) return index + 2;
    if (next === CR && buffer[index + 2] === LF) return index + 3;
  }
  return -1;
}

function isUsageOnly(event: Buffer): boolean {
  // Searched in the bytes: nearly every event is a content delta, and decoding each was most of the filter's cost.
  if (!event.includes(USAGE)) return false;
  const text = event.toString('utf8');
  const data = text
    .split(/\r?\n/)
    .filter((line) => line.startsWith('data:'))
    .map((line) => line.slice(5).trimStart())
    .join('\n');
  try {
    const chunk = JSON.parse(data) as { choices?: unknown[]; usage?: unknown };
    return Array.isArray(chunk.choices) && chunk.choices.length === 0 && chunk.usage != null;
  } catch {
    return false;
  }
}
