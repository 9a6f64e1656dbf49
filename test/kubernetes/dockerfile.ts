// Reading examples/kubernetes/Dockerfile and .dockerignore without a container engine: the
// instructions (for the checks of manifests.test.ts and the replay of image.test.ts), and which
// files of the build context the .dockerignore leaves out.

export interface Instruction {
  readonly keyword: string;
  readonly args: string;
}

/** Instructions with line continuations joined and comments dropped. */
export function dockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    if (/^\s*#/.test(raw)) continue;
    const line = raw.trimEnd();
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    current += line;
    const m = /^\s*(\S+)\s*(.*)$/s.exec(current);
    if (m !== null) out.push({ keyword: (m[1] as string).toUpperCase(), args: (m[2] as string).trim() });
    current = '';
  }
  return out;
}

/** The stages of a Dockerfile: each FROM and the instructions after it. */
export function stages(instructions: readonly Instruction[]): { from: string; name?: string; body: Instruction[] }[] {
  const out: { from: string; name?: string; body: Instruction[] }[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const [image, as, name] = instruction.args.split(/\s+/);
      out.push({ from: image as string, ...(as?.toUpperCase() === 'AS' ? { name } : {}), body: [] });
    } else if (instruction.keyword !== 'ARG' || out.length > 0) {
      const stage = out.at(-1);
      if (stage === undefined) throw new Error(`${instruction.keyword} before the first FROM`);
      stage.body.push(instruction);
    }
  }
  return out;
}

/**
 * A .dockerignore as a predicate over context paths (relative, '/'-separated): Docker's rules, for
 * the patterns a .dockerignore usually holds: `*` and `?` within one path segment, `**` across any
 * number of them, a leading `!` to take a path back, the last matching line wins, and a pattern that
 * matches a folder leaves out everything in it.
 */
export function dockerignore(text: string): (path: string) => boolean {
  const rules = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const negated = line.startsWith('!');
      const pattern = (negated ? line.slice(1) : line).trim().replace(/^\/+/, '').replace(/\/+$/, '');
      let source = '';
      for (let i = 0; i < pattern.length; i++) {
        const c = pattern[i] as string;
        if (c === '*' && pattern[i + 1] === '*') {
          // `**/` matches no segment or several
          if (pattern[i + 2] === '/') {
            source += '(?:.*/)?';
            i += 2;
          } else {
            source += '.*';
            i += 1;
          }
        } else if (c === '*') source += '[^/]*';
        else if (c === '?') source += '[^/]';
        else source += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
      }
      return { negated, regex: new RegExp(`^${source}(?:/.*)?$`) };
    });
  return (path: string) => {
    let ignored = false;
    for (const rule of rules) if (rule.regex.test(path)) ignored = !rule.negated;
    return ignored;
  };
}
