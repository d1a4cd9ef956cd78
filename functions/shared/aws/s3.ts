import { HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';

/** Writes objects whose integrity S3 checks on arrival (ChecksumSHA256). */
export class S3ObjectWriter {
  private readonly client: S3Client;

  constructor(client: S3Client = new S3Client({})) {
    this.client = client;
  }

  async put(input: { bucket: string; key: string; body: string; sha256Base64: string }): Promise<void> {
    await this.client.send(
      new PutObjectCommand({
        Bucket: input.bucket,
        Key: input.key,
        Body: input.body,
        ContentType: 'text/yaml; charset=utf-8',
        ChecksumSHA256: input.sha256Base64,
      }),
    );
  }

  async exists(input: { bucket: string; key: string }): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: input.bucket, Key: input.key }));
      return true;
    } catch (error) {
      if ((error as { name?: string }).name === 'NotFound') return false;
      throw error;
    }
  }
}
