import type { IncomingMessage } from 'node:http';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import type { Readable } from 'node:stream';
import { BadRequestError, PayloadTooLargeError, RequestAbortedError, UnsupportedEncodingError } from '../errors.js';

/**
 * Reads a request body once, into one Buffer, decoding gzip, deflate or br.
 * More than `limit` bytes (after decoding, so a small compressed bomb is
 * refused too) is a 413; a declared Content-Length over the limit is refused
 * before anything is read.
 */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (declared > limit) throw new PayloadTooLargeError(limit);
  const source = decoded(req);
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const fail = (error: Error) => {
      cleanup();
      if (source !== req) source.destroy();
      reject(error);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) return fail(new PayloadTooLargeError(limit));
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    // The request itself only errors when its connection breaks; a decoder errors on corrupt data.
    const onError = (error: Error) =>
      fail(
        source === req
          ? new RequestAbortedError()
          : new BadRequestError(`Request body is not valid ${req.headers['content-encoding']}: ${error.message}`, {
              code: 'invalid_encoding',
            }),
      );
    const cleanup = () => {
      source.off('data', onData).off('end', onEnd).off('error', onError);
      req.off('close', onClose);
    };
    // A client that disconnects mid-body never sends 'end'.
    const onClose = () => {
      if (!req.complete) fail(new RequestAbortedError());
    };
    source.on('data', onData).on('end', onEnd).on('error', onError);
    req.on('close', onClose);
  });
}

function decoded(req: IncomingMessage): Readable {
  const encoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  switch (encoding) {
    case 'identity':
    case '':
      return req;
    case 'gzip':
    case 'x-gzip':
      return req.pipe(createGunzip());
    case 'deflate':
      return req.pipe(createInflate());
    case 'br':
      return req.pipe(createBrotliDecompress());
    default:
      throw new UnsupportedEncodingError(encoding);
  }
}
