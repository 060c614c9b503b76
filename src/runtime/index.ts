/**
 * runtime: policy for running processes in the sandbox, and the door to the C helper. `runContainer`
 * is the one path from a prepared snapshot to a running process (RUN steps and `tsbuild run`); the
 * spec (namespaces, capabilities, masked paths, rlimits) is built here as data and the helper carries
 * it out. Also: host mounts through the helper, xattrs and device nodes for layers, user lookup in an
 * image, and container records.
 *
 * Imports errors, fsutil, image and snapshotter (mount data) only.
 */
export { runContainer, cgroups, oomMessage, reapCgroups } from './container.js';
export type { ContainerResult } from './container.js';
export type { NetworkMode, SpecMount, Rlimit } from './spec.js';
export { currentLimits } from './spec.js';
export { loadProfile } from './seccomp.js';
export { parseSecurityOpts, hostCaps, parseDevice, deviceNumbers } from './security.js';
export type { SecurityOptions } from './security.js';
export { describeCgroups, detectCgroups, delegatedToUser } from './cgroups.js';
export type { CgroupLimits, CgroupStats, CgroupDriver } from './cgroups.js';
export { hostMount, hostUnmount, probeOverlay, helperPath, SandboxError, applyMeta } from './helper.js';
export { hostMountAsync, hostUnmountAsync, readLayerMetaAsync, hostMountMethod } from './mountserver.js';
export { spawnChild, spawnMethod } from './spawn.js';
export type { Child, StdioKind } from './spawn.js';
export { toSysMount, MS } from './mounts.js';
export { fuseOverlayUnavailable, FUSE_OVERLAY, containerRootMounts } from './fuse.js';
export { layerDirs, overlayDirs, readFileInLayers } from './layers.js';
export { resolveUser, addUserEntries, hostAccount } from './user.js';
export { Containers } from './containers.js';
export type { ContainerState, ContainerStatus, ContainerConfig, RestartPolicy, HealthConfig, HealthState } from './containers.js';
export { execInContainer, mergeEnv } from './exec.js';
export type { ExecOptions } from './exec.js';
export { LogWriter, readLogs, DEFAULT_LOG_OPTIONS } from './logs.js';
export type { LogEntry, LogOptions, ReadLogOptions } from './logs.js';
export { setFrozen, isFrozen, cgroupPids } from './freezer.js';
export type { StartInfo, SpawnOptions, RunResult, LayerMeta } from './helper.js';
export { Volumes, specMount, checkPropagation, propagationFlags } from './volumes.js';
export type { VolumeInfo, MountConfig } from './volumes.js';
export { Networks, RESERVED as RESERVED_NETWORKS } from './network.js';
export type { PortBinding, Endpoint, NetworkState, AttachRequest } from './network.js';
export { serveDns } from './dns.js';
export { startUserModeNetwork, slirpAvailable, SLIRP } from './slirp.js';
export type { UserModeNetwork } from './slirp.js';
export { isRootless, rootlessMapKind, extractionLimits, hostIdMapPlan, userNamespaceHolder, endUserNamespaceHolder, reexecInUserNamespace, rootlessRunDir, planIdMaps, parseSubIds } from './userns.js';
export type { IdMapPlan, MapKind } from './userns.js';
export { parseIdMap, checkIdMaps, allocateAuto, parseAutoOptions, hostIdOf, containerIdOf, autoRanges, AUTO_USER, AUTO_SIZE, ownIdMaps, keepIdMap, parseKeepIdOptions, IDENTITY_MAPS } from './idmap.js';
export type { IdMap, UserNamespaceMaps } from './idmap.js';
export { emulationFor, emulationSummary, runsNatively, EmulationError } from './emulation.js';
export type { Emulation, EmulationProbe } from './emulation.js';
