// Declarative target profiles (FILE.json): being written; see docs/targets.md once it lands.

import { UsageError } from '../../core/errors.js';
import type { TargetFactory } from './types.js';

export async function loadProfile(file: string): Promise<TargetFactory> {
  throw new UsageError(`profiles are not supported yet (${file})`, '--protocol');
}
