import crypto from 'node:crypto';

export function sha256(data: string | Buffer): string {
  return 'sha256:' + crypto.createHash('sha256').update(data).digest('hex');
}

/** OCI image-spec layer ChainID: ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)). */
export function chainIDs(diffIDs: string[]): string[] {
  const out: string[] = [];
  for (const d of diffIDs) out.push(out.length === 0 ? d : sha256(`${out[out.length - 1]} ${d}`));
  return out;
}

const DIGEST = /^sha256:[a-f0-9]{64}$/;
export function isDigest(s: string): boolean {
  return DIGEST.test(s);
}
