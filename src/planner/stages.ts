/**
 * Stage resolution: a FROM or --from names a stage (by name or index, only ones above it) or else an
 * image; the target and the stages it needs (through FROM, COPY --from and RUN --mount from=), so a
 * broken stage nothing needs cannot fail the build.
 */
import type { Dockerfile, Stage } from '../parser/index.js';
import { expand } from './scope.js';
import { PlanError } from './types.js';

export class StageResolver {
  private byName = new Map<string, Stage>();

  /** `isNamed`: a --build-context of that name, which replaces a stage of the same name. */
  constructor(private df: Dockerfile, private globalEnv: Map<string, string>, private file: string, private isNamed: (ref: string) => boolean = () => false) {
    for (const s of df.stages) if (s.name) this.byName.set(s.name, s);
  }

  /** The target stage: by name, or the last one. */
  target(name: string | undefined): Stage {
    const t = name ? this.byName.get(name.toLowerCase()) : this.df.stages[this.df.stages.length - 1];
    if (t) return t;
    const names = this.df.stages.map((s) => s.name).filter(Boolean);
    throw new PlanError(`target stage "${name}" could not be found${names.length ? ` (stages: ${names.join(', ')})` : ' (no stage has a name: add "AS <name>" to a FROM line)'}`);
  }

  /** A stage's FROM name after expansion with the global ARGs. */
  fromName(s: Stage): string {
    const name = expand(s.from.image, this.globalEnv, s.from.range.startLine, this.df.escapeToken);
    if (name.trim() === '') throw new PlanError(`base name (${s.from.image}) should not be blank`, s.from.range.startLine, this.file);
    return name;
  }

  /** The stage `ref` names, if it names one defined before stage index `before`; undefined means an image. */
  stageRef(ref: string, before: number, line: number): Stage | undefined {
    if (this.isNamed(ref)) return undefined;
    const byName = this.byName.get(ref.toLowerCase());
    if (byName) {
      if (byName.index >= before) throw new PlanError(`stage "${ref}" is used before it is defined: a stage can only use stages above it`, line, this.file);
      return byName;
    }
    if (/^\d+$/.test(ref)) {
      const i = parseInt(ref, 10);
      if (i >= before) throw new PlanError(`stage index ${i} is not defined before this stage`, line, this.file);
      return this.df.stages[i];
    }
    return undefined;
  }

  /** Indexes of the stages `target` depends on, itself included. */
  needed(target: Stage): Set<number> {
    const needed = new Set<number>();
    const visit = (s: Stage) => {
      if (needed.has(s.index)) return;
      needed.add(s.index);
      const base = this.stageRef(this.fromName(s), s.index, s.from.range.startLine);
      if (base) visit(base);
      for (const i of s.instructions) {
        if (i.kind === 'copy' && i.from) {
          const dep = this.stageRef(i.from, s.index, i.range.startLine);
          if (dep) visit(dep);
        }
        if (i.kind === 'run') {
          for (const m of i.mounts) {
            const from = /(?:^|,)\s*from=([^,]+)/i.exec(m)?.[1];
            const dep = from ? this.stageRef(from.replace(/^"|"$/g, ''), s.index, i.range.startLine) : undefined;
            if (dep) visit(dep);
          }
        }
      }
    };
    visit(target);
    return needed;
  }
}
