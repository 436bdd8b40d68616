// fs as Node 20 has it, plus a minimal globSync for patterns like "**/name" under a cwd.
import fs from 'node:fs';
import path from 'node:path';

export * from 'node:fs';
export default fs;

export function globSync(pattern, options = {}) {
  const cwd = options.cwd ?? process.cwd();
  const wanted = path.basename(pattern);
  const found = [];
  const walk = (dir) => {
    for (const entry of fs.readdirSync(path.join(cwd, dir), { withFileTypes: true })) {
      const rel = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(rel);
      else if (entry.name === wanted) found.push(rel);
    }
  };
  if (fs.existsSync(cwd)) walk('.');
  return found;
}
