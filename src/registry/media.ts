/** Manifest and layer media types of OCI and Docker v2 schema 2, and platform matching. */
import { compressionOfMediaType, MediaType, type Compression } from '../image/index.js';
import { RegistryError } from './transport.js';

export const DockerMediaType = {
  manifest: 'application/vnd.docker.distribution.manifest.v2+json',
  list: 'application/vnd.docker.distribution.manifest.list.v2+json',
  config: 'application/vnd.docker.container.image.v1+json',
  layerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  layer: 'application/vnd.docker.image.rootfs.diff.tar',
  foreign: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  schema1: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

export const MANIFEST_ACCEPT = [MediaType.index, DockerMediaType.list, MediaType.manifest, DockerMediaType.manifest];

export { isIndexMediaType as isIndex } from '../image/index.js';
export function isManifest(mediaType: string): boolean {
  return mediaType === MediaType.manifest || mediaType === DockerMediaType.manifest;
}

/** How a layer blob is compressed; a media type that is no tar layer at all is refused. */
export function layerCompression(mediaType: string): Compression {
  const c = compressionOfMediaType(mediaType);
  if (c === 'none' && mediaType !== MediaType.layer && !mediaType.endsWith('.tar')) {
    throw new RegistryError('UNSUPPORTED_MEDIA_TYPE', `unsupported layer media type ${mediaType}`);
  }
  return c;
}

export { selectManifest } from '../image/index.js';
