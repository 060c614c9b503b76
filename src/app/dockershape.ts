/**
 * The objects `inspect` prints in Docker's shape. Go templates (`inspect -f '{{.Config.User}}'`) see
 * Docker's structs, whose every field exists, zero when unset; tsbuild's records and OCI configs leave
 * unset fields out. These fill them in, so a template that works with Docker works here.
 */
import { NotFoundError } from '../errors/index.js';
import type { ImageConfig } from '../image/index.js';
import type { Store } from '../store/index.js';

/**
 * An unset slice or map field of a Docker struct: JSON says `null`, as Docker's does, while a Go
 * template prints it as Go prints a nil slice (`[]`) or map (`map[]`), and finds it empty.
 */
export class GoNil {
  constructor(readonly kind: 'slice' | 'map' | 'pointer') {}
  /** A nil slice or map is `null` in Docker's JSON; a nil pointer field is left out (omitempty). */
  toJSON(): null | undefined {
    return this.kind === 'pointer' ? undefined : null;
  }
}
/** A nil pointer field of Docker's structs (State.Health without a healthcheck): `<nil>` in a template. */
export const nilPointer = new GoNil('pointer');
const nilSlice = new GoNil('slice');
const nilMap = new GoNil('map');

/** Docker's container.Config (an image's Config and a container's), every field. */
export function dockerConfig(c: Record<string, unknown>): Record<string, unknown> {
  const set = Object.fromEntries(Object.entries(c).filter(([, v]) => v !== undefined));
  return {
    Hostname: '', Domainname: '', User: '', AttachStdin: false, AttachStdout: false, AttachStderr: false, ExposedPorts: nilMap,
    Tty: false, OpenStdin: false, StdinOnce: false, Env: nilSlice, Cmd: nilSlice, Healthcheck: null, ArgsEscaped: false, Image: '',
    Volumes: nilMap, WorkingDir: '', Entrypoint: nilSlice, NetworkDisabled: false, MacAddress: '', OnBuild: nilSlice, Labels: nilMap,
    StopSignal: '', StopTimeout: null, Shell: nilSlice,
    ...set,
  };
}

/** Docker's RootFS of an image: `Type` and the layers' diff ids as `Layers`. */
export function dockerRootFS(config: ImageConfig): { Type: string; Layers: string[] } {
  return { Type: config.rootfs?.type ?? 'layers', Layers: config.rootfs?.diff_ids ?? [] };
}

/** The image's Labels, Entrypoint, ExposedPorts and Volumes, for a container's inspect; none once the image is gone. */
export function imageConfigFields(store: Store, imageId: string): Record<string, unknown> {
  try {
    const { Labels, Entrypoint, ExposedPorts, Volumes } = store.content.resolve(imageId).config.config;
    return { Labels, Entrypoint, ExposedPorts, Volumes };
  } catch (e) {
    if (e instanceof NotFoundError) return {};
    throw e;
  }
}
