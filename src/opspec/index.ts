/**
 * opspec: the wire types of a build graph, what the planner puts into vertices and ops carry out
 * (as BuildKit's LLB is between its frontend and solver). Plain data only: JSON-serialisable, no
 * behaviour, so both sides and the cache-key tables can depend on it without depending on each other.
 *
 * Imports only image types; imported by planner, ops and app.
 */
import type { History, ImageConfig } from '../image/index.js';

/** RUN networks: the host's, none (loopback only), or default (a private namespace on the bridge, with NAT). */
export type NetworkMode = 'host' | 'none' | 'default';

export type RunMountSpec =
  | { type: 'bind'; target: string; source: string; from?: string; rw: boolean }
  | { type: 'cache'; target: string; id: string; sharing: 'shared' | 'private' | 'locked'; from?: string; source: string; mode: number; uid: number; gid: number; ro: boolean }
  | { type: 'tmpfs'; target: string; size?: number }
  | { type: 'secret'; target: string; id: string; env?: string; required: boolean; mode: number; uid: number; gid: number }
  | { type: 'ssh'; target: string; id: string; required: boolean; mode: number; uid: number; gid: number };

export type OpSpec =
  | { kind: 'scratch' }
  | { kind: 'image'; name: string; manifestDigest: string }
  | { kind: 'context'; dir: string; ignore: string[] }
  | {
      kind: 'exec';
      args: string[];
      env: string[];
      cwd: string;
      user: string;
      network: NetworkMode;
      hostname: string;
      history: History[];
      createdBy: string;
      /** Files bind-mounted read-only for this step only (heredoc scripts under /dev/pipes). */
      files: { path: string; data: string; mode: number }[];
      /** Which env entries come from ARGs (for cache explanations). */
      argNames: string[];
      /** RUN --mount specs; `input` indexes the exec vertex's inputs (0 is the root filesystem). */
      mounts: (RunMountSpec & { input?: number })[];
      /** RUN --security=insecure: all capabilities, nothing masked (needs --allow security.insecure). */
      insecure: boolean;
      /** `build --add-host host:ip` entries for /etc/hosts (absent: none). */
      extraHosts?: string[];
      /** `build --ulimit` values (absent: the defaults). */
      ulimits?: { type: string; soft: number; hard: number }[];
      /** `build --shm-size` in bytes (absent: 64 MiB). */
      shmSize?: number;
      /** os/arch[/variant] when not this machine's: the step runs under qemu-user emulation. */
      platform?: string;
    }
  | {
      kind: 'copy';
      sources: string[];
      contents: { path: string; data: string }[];
      dest: string;
      chown?: string;
      chmod?: string;
      fromContext: boolean;
      excludes: string[];
      history: History[];
      createdBy: string;
      verb: 'COPY' | 'ADD';
      /** Keep each source's path (relative to the context, or to a `./` in it) under the destination. */
      parents: boolean;
      /** ADD: extract archives (undefined = local archives yes, URLs no). */
      unpack?: boolean;
      /** ADD of a URL: sha256 the content must have. */
      checksum?: string;
      link: boolean;
    }
  | { kind: 'mkdir'; path: string; user: string; history: History[]; createdBy: string }
  | { kind: 'export'; config: Omit<ImageConfig, 'rootfs' | 'history' | 'created'>; names: string[]; history: History[] };
