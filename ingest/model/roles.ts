// Roles from behaviour (docs/model.md): decided from per-actor counts that merge across files
// (actor_topics, actors), so a new file costs a pass over actors, never over stored requests.

export type ActorRole = 'learner' | 'proctor' | 'other';

export interface ActorStats {
  subTopics: Set<number>;
  publishes: number;
  requests: number;
}

/**
 * An actor that watches topics mostly published by others is a proctor candidate; since a
 * learner also watches its control topic, published by its proctor, the candidates that watch
 * each other are told apart by how many publishers they watch (a proctor watches its roster, a
 * learner its proctor or two), then by who publishes less.
 */
export function assignRoles(
  actors: Map<number, ActorStats>,
  publishersOf: Map<number, number[]>,
  overrides: Map<number, 'learner' | 'proctor'>,
): Map<number, ActorRole> {
  const watched = new Map<number, Set<number>>();
  const candidate = new Set<number>();
  for (const [actor, stats] of actors) {
    const publishers = new Set<number>();
    let byOthers = 0;
    for (const t of stats.subTopics) {
      const pubs = publishersOf.get(t);
      if (!pubs) continue;
      let other = false;
      for (const p of pubs) {
        if (p !== actor) {
          other = true;
          publishers.add(p);
        }
      }
      if (other) byOthers++;
    }
    watched.set(actor, publishers);
    if (stats.subTopics.size > 0 && byOthers * 2 > stats.subTopics.size) candidate.add(actor);
  }
  const roles = new Map<number, ActorRole>();
  for (const [actor, stats] of actors) {
    const forced = overrides.get(actor);
    if (forced) {
      roles.set(actor, forced);
      continue;
    }
    let proctor = candidate.has(actor);
    if (proctor) {
      const mine = watched.get(actor)!;
      for (const other of mine) {
        const theirs = watched.get(other)?.size ?? 0;
        const otherStats = actors.get(other);
        if (mine.size < theirs || (mine.size === theirs && (otherStats?.publishes ?? 0) <= stats.publishes)) {
          proctor = false;
          break;
        }
      }
    }
    roles.set(actor, proctor ? 'proctor' : stats.requests > 0 ? 'learner' : 'other');
  }
  return roles;
}
