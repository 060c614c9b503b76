// Removes dist/ before compiling: tsc never deletes outputs, so a deleted or renamed test would
// otherwise keep running from its stale compiled copy.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

fs.rmSync(path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist'), { recursive: true, force: true });
