import { TsbuildError } from '../errors/index.js';

export class SnapshotError extends TsbuildError {
  constructor(code: 'SNAPSHOT_NOT_FOUND' | 'SNAPSHOT_EXISTS' | 'SNAPSHOT_INVALID' | 'SNAPSHOT_IN_USE' | 'SNAPSHOT_SYNC', message: string) {
    super(code, message);
  }
}
