/**
 * The S3-compatible destination. The archive is uploaded first, its manifest object last: a
 * listing shows a backup as complete only once both exist. A failed upload removes what it put.
 */
import { createReadStream } from 'node:fs';
import { readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { BackupConfig } from '../config/backup.ts';
import { BackupError } from './errors.ts';
import { BACKUP_ID_RE, outerSchema, parseRecord } from './manifest.ts';
import type { Destination, ListedBackup } from './destination-types.ts';

type S3Settings = BackupConfig['s3'] & { bucket: string };

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

export function createS3Destination(s3: S3Settings): Destination {
  const client = new S3Client({
    region: s3.region,
    forcePathStyle: s3.forcePathStyle,
    ...(s3.endpoint ? { endpoint: s3.endpoint } : {}),
    ...(s3.accessKeyId && s3.secretAccessKey ? { credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } } : {}),
    maxAttempts: 3,
    // Plain signed uploads: S3-compatible servers differ in their support of checksum trailers.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const key = (name: string): string => `${s3.prefix}${name}`;
  const where = `s3://${s3.bucket}/${s3.prefix}`;

  async function getText(name: string): Promise<string | undefined> {
    try {
      const r = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key(name) }));
      return await r.Body?.transformToString('utf8');
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw new BackupError('BACKUP_WRITE_FAILED', `reading ${where}${name} failed (${statusOf(err) ?? (err as Error).name})`, { cause: err });
    }
  }

  async function sizeOf(name: string): Promise<number | undefined> {
    try {
      const r = await client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key(name) }));
      return r.ContentLength;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw new BackupError('BACKUP_WRITE_FAILED', `reading ${where}${name} failed (${statusOf(err) ?? (err as Error).name})`, { cause: err });
    }
  }

  return {
    describe: where,
    async stagingPath(id) {
      // Encrypted already: the staging file never holds plaintext.
      return join(tmpdir(), `.gatehouse-${id}.age.partial`);
    },
    async put(id, localFile, outer) {
      try {
        const { size } = await stat(localFile);
        // A body in memory up to 256 MiB (retried as a whole by the SDK); a stream beyond.
        const body = size <= 256 * 1024 * 1024 ? await readFile(localFile) : createReadStream(localFile);
        await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key(`${id}.age`), Body: body, ContentLength: size }));
        await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key(`${id}.json`), Body: JSON.stringify(outer, null, 2) + '\n', ContentType: 'application/json' }));
      } catch (err) {
        await client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: key(`${id}.age`) })).catch(() => undefined);
        throw new BackupError('BACKUP_WRITE_FAILED', `uploading backup ${id} to ${where} failed (${statusOf(err) ?? (err as Error).name})`, { cause: err });
      } finally {
        await rm(localFile, { force: true });
      }
    },
    async list() {
      const names = new Set<string>();
      let token: string | undefined;
      do {
        const r = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: s3.prefix, ...(token ? { ContinuationToken: token } : {}) }));
        for (const o of r.Contents ?? []) if (o.Key) names.add(o.Key.slice(s3.prefix.length));
        token = r.IsTruncated ? r.NextContinuationToken : undefined;
      } while (token);
      const out: ListedBackup[] = [];
      for (const name of [...names].sort()) {
        const id = name.replace(/\.age$/, '');
        if (!name.endsWith('.age') || !BACKUP_ID_RE.test(id)) continue;
        const text = names.has(`${id}.json`) ? await getText(`${id}.json`) : undefined;
        out.push(text ? { id, outer: parseRecord(outerSchema, text, `${id}.json`) } : { id });
      }
      return out;
    },
    async open(id) {
      const text = await getText(`${id}.json`);
      const size = await sizeOf(`${id}.age`);
      if (text === undefined) {
        if (size === undefined) throw new BackupError('BACKUP_NOT_FOUND', `no backup ${id} in ${where}`);
        throw new BackupError('BACKUP_INCOMPLETE', `backup ${id} has no manifest: it was cut off while written`);
      }
      const outer = parseRecord(outerSchema, text, `${id}.json`);
      if (size === undefined) throw new BackupError('BACKUP_NOT_FOUND', `the archive of backup ${id} is missing from ${where}`);
      return {
        outer,
        bytes: size,
        read: async function* () {
          const r = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key(`${id}.age`) }));
          const body = r.Body as AsyncIterable<Uint8Array> | undefined;
          if (!body) return;
          yield* body;
        },
      };
    },
    async remove(id) {
      await client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: key(`${id}.json`) }));
      await client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: key(`${id}.age`) }));
    },
  };
}
