/**
 * Prompt tokens of an image part, the way OpenAI bills them (vision guide, gpt-4o family): low
 * detail is a flat 85; otherwise the image is scaled to fit 2048×2048, then so its shorter side is
 * at most 768, and costs 85 + 170 per 512-pixel tile. Dimensions are read from the header of
 * inline (data:) images; a remote image mnemo cannot see counts as 1024×1024 (765 tokens).
 */
const BASE = 85;
const PER_TILE = 170;
const UNKNOWN = { width: 1024, height: 1024 };
/** Enough base64 to reach a JPEG's frame header in practice, without decoding whole images. */
const HEADER_CHARS = 64 * 1024;

export function imageTokens(part: unknown): number {
  const value = part as { image_url?: { url?: unknown; detail?: unknown } | string; detail?: unknown } | null;
  const image = typeof value?.image_url === 'object' ? value.image_url : { url: value?.image_url, detail: value?.detail };
  if (image?.detail === 'low') return BASE;
  const size = typeof image?.url === 'string' ? (inlineSize(image.url) ?? UNKNOWN) : UNKNOWN;
  return tileTokens(size.width, size.height);
}

export function tileTokens(width: number, height: number): number {
  let w = width;
  let h = height;
  const fit = Math.min(1, 2048 / Math.max(w, h));
  w *= fit;
  h *= fit;
  const shorter = Math.min(1, 768 / Math.min(w, h));
  w *= shorter;
  h *= shorter;
  return BASE + PER_TILE * Math.ceil(w / 512) * Math.ceil(h / 512);
}

function inlineSize(url: string): { width: number; height: number } | undefined {
  const comma = url.indexOf(',');
  if (!url.startsWith('data:image/') || comma < 0) return undefined;
  const head = Buffer.from(url.slice(comma + 1, comma + 1 + HEADER_CHARS - (HEADER_CHARS % 4)), 'base64');
  return pngSize(head) ?? gifSize(head) ?? jpegSize(head);
}

function pngSize(bytes: Buffer): { width: number; height: number } | undefined {
  if (bytes.length < 24 || bytes.readUInt32BE(0) !== 0x89504e47) return undefined;
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

function gifSize(bytes: Buffer): { width: number; height: number } | undefined {
  if (bytes.length < 10 || bytes.toString('ascii', 0, 3) !== 'GIF') return undefined;
  return { width: bytes.readUInt16LE(6), height: bytes.readUInt16LE(8) };
}

/** Walks JPEG segments to the first start-of-frame marker (SOF0–SOF15 but DHT, JPG, DAC). */
function jpegSize(bytes: Buffer): { width: number; height: number } | undefined {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return undefined;
  let at = 2;
  while (at + 9 < bytes.length) {
    if (bytes[at] !== 0xff) return undefined;
    const marker = bytes[at + 1]!;
    const length = bytes.readUInt16BE(at + 2);
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { height: bytes.readUInt16BE(at + 5), width: bytes.readUInt16BE(at + 7) };
    }
    at += 2 + length;
  }
  return undefined;
}

/**
 * Prompt tokens of an input audio part (chat `input_audio`), the way OpenAI bills user audio:
 * about 10 tokens a second (its pricing pages give $0.06 a minute at $100 per million audio input
 * tokens: 600 a minute). The duration is read from a WAV header (byte rate); other formats count as
 * 128 kbit/s, the common MP3 rate.
 */
export function audioTokens(part: unknown): number {
  const audio = (part as { input_audio?: { data?: unknown; format?: unknown } } | null)?.input_audio;
  if (typeof audio?.data !== 'string') return 0;
  const bytes = Math.floor((audio.data.length * 3) / 4);
  const header = Buffer.from(audio.data.slice(0, 64), 'base64');
  const wavRate = header.length >= 32 && header.toString('ascii', 0, 4) === 'RIFF' ? header.readUInt32LE(28) : 0;
  const seconds = bytes / (wavRate > 0 ? wavRate : 16_000);
  return Math.ceil(seconds * 10);
}

/**
 * Prompt tokens of a file part (a PDF): OpenAI gives the model the extracted text and an image of
 * each page. Neither is known without parsing the document, so each page (counted from the
 * document's page objects) is estimated as an image of a page at high detail (a letter page scales
 * to 768×994: 4 tiles, 765 tokens) plus 500 tokens of text. A file sent by id cannot be seen: 0.
 */
export function fileTokens(part: unknown): number {
  const file = (part as { file?: { file_data?: unknown } } | null)?.file;
  if (typeof file?.file_data !== 'string') return 0;
  const comma = file.file_data.indexOf(',');
  const bytes = Buffer.from(file.file_data.slice(comma + 1), 'base64').toString('latin1');
  const pages = Math.max(1, (bytes.match(/\/Type\s*\/Page(?![s\w])/g) ?? []).length);
  return pages * (tileTokens(612, 792) + 500);
}
