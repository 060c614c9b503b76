/**
 * app: every user-level operation, one function each, for the CLI and for any other front end.
 * Typed requests in (never argv), typed events out through `onEvent`, an AbortSignal through
 * everything; results are returned, never printed. Open the store with `openStore(storeRoot(flag))`,
 * then call `build`, `run`, `pull`, `push`, `tag`, `login`/`logout`, `listImages`/`inspectImage`/
 * `removeImages`, `listContainers`/`removeContainers`, the cache operations, `verify`, `info`.
 *
 * May import every module below it; nothing imports app but cli.
 */
export type { AppEvent, OpOptions } from './events.js';
export { build } from './build.js';
export type { BuildRequest, BuildResult, ExplainStep } from './build.js';
export { parseSecrets } from './secrets.js';
export { contextFromStream } from './stdincontext.js';
export type { SecretsRequest } from './secrets.js';
export { parseOutputs } from './outputs.js';
export type { OutputSpec } from './outputs.js';
export { parseCacheSpecs } from './remotecache.js';
export type { CacheSpec } from './remotecache.js';
export { run, runDetached, parseRestart, parseLogOpts } from './run.js';
export type { RunRequest, RunHooks } from './run.js';
export { pull, pullAllTags, push, tag, login, logout, listImages, inspectImage, removeImages, imageHistory, saveImage } from './images.js';
export type { PullRequest, PushRequest, ImageSummary, HistoryRow } from './images.js';
export { parseImageFilters, filterImages } from './imagefilter.js';
export type { RegistryOptions } from './registry.js';
export {
  listContainers, removeContainers, pruneContainers, stopContainer, killContainer, waitContainer, startContainer, restartContainer, pauseContainer, renameContainer,
  topContainer, containerLogs, parseLogTime, inspectContainer, containerSize, isContainer, statusText,
} from './containers.js';
export type { TopRow } from './containers.js';
export { execContainer, execDetached } from './exec.js';
export type { ExecRequest } from './exec.js';
export { attachContainer, parseDetachKeys } from './attach.js';
export { monitorContainer } from './monitor.js';
export type { MonitorReport } from './monitor.js';
export { copy } from './cp.js';
export type { CopySpec } from './cp.js';
export { containerStats } from './stats.js';
export { pruneImages, diskUsage, diskUsageVerbose } from './system.js';
export { loadImages } from './load.js';
export { needsUserNamespace, runInUserNamespace, migrateUserNamespace } from './rootless.js';
export type { LoadedImage } from './load.js';
export type { DfRow, DfVerbose, ImagePruneOptions } from './system.js';
export type { ContainerStats } from './stats.js';
export { listCacheRecords, listMounts, parseMountsLocation, exportMounts, importMounts, prune } from './cache.js';
export type { MountsLocation } from './cache.js';
export { verify } from './verify.js';
export { doctorStore as doctor, type DoctorReport } from '../store/index.js';
export type { VerifyResult } from './verify.js';
export { info, dockerInfo } from './info.js';
export type { Info, DockerInfo } from './info.js';
export { describeDockerfile } from './parse.js';
export { humanSize, table, ago } from './format.js';
export { GoNil, nilPointer } from './dockershape.js';
export { parseLimits, parseUlimits, parseSecurity, parseMemory, parseAddHosts } from './limits.js';
export { currentLimits } from '../runtime/index.js';
export { portLines, portsText } from './network.js';
export { dnsMain, setSelfCommand } from './dns.js';
export { checkDockerfile } from './check.js';
export { formatText as formatChecks, formatSarif as formatChecksSarif, RULES as CHECK_RULES } from '../planner/index.js';
export type { CheckResult, Finding } from '../planner/index.js';
export { listBuilds, getBuild, removeBuild, pruneBuilds, diffBuilds, buildLogs, LOG_CAP } from './history.js';
export { writeTimeline } from './timeline.js';
export { layerInsight } from './layers.js';
export type { LayerInsight } from './layers.js';
export type { BuildRecord, StepRecord, StepChange } from './history.js';
export { createNetwork, listNetworks, inspectNetwork, pruneNetworks, connectNetwork, disconnectNetwork } from './networks.js';
export { createVolume, listVolumes, inspectVolume, removeVolume, pruneVolumes } from './volumes.js';
export type { VolumeRow } from './volumes.js';
export type { VolumeInfo } from '../runtime/index.js';

// What requests and events are made of, for front ends.
export { openStore, storeRoot, parseSize, parseUntil } from '../store/index.js';
export type { Store } from '../store/index.js';
export { parseCompression } from '../image/index.js';
export type { CompressionSpec } from '../image/index.js';
export { VertexError } from '../builder/index.js';
export type { SolverEvent, Vertex } from '../builder/index.js';
export type { ContainerState } from '../runtime/index.js';
export { suggest } from '../parser/index.js';
