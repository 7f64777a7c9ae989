import { createRequire } from 'node:module';

// Read once from package.json so runs record the exact rehearse version that produced them.
const require = createRequire(import.meta.url);
function findVersion(): string {
  for (const candidate of ['../package.json', '../../package.json']) {
    try {
      const pkg = require(candidate) as { name?: string; version?: string };
      if (pkg.name === 'rehearse' && pkg.version) return pkg.version;
    } catch {
      // try the next location: sources run from ./, the build from ./dist
    }
  }
  return '0.0.0-unknown';
}
export const rehearseVersion: string = findVersion();
