// A synthetic model written into a real SQLite file, for tests that drive the CLI on a model
// without ingesting logs first.

import { openDatabase } from '../../db/open.js';
import { writeModel, type ModelData, type TimelineRow } from '../../db/model-store.js';
import { distributionNames, type Distribution } from '../../db/model-types.js';
import { syntheticModel } from '../../fixtures/synthetic-model.js';

export function writeSyntheticModel(file: string, options: Parameters<typeof syntheticModel>[0]): void {
  const m = syntheticModel(options);
  const sessions = [...m.classes()].flatMap((c) => (c.proctor ? [c.proctor, ...c.learners] : c.learners));
  const timeline: TimelineRow[] = sessions.flatMap((s) => m.timeline(s.id).map((e) => ({ ...e, sessionId: s.id })));
  const data: ModelData = {
    overview: m.overview(),
    actors: sessions.map((s) => ({ id: s.id, pseudonym: s.actor, role: s.role, clientFamily: null })),
    sessions: sessions.map((s) => ({ ...s, actorId: s.id, pseudonym: `${s.actor}#1`, publishTopic: null, controlTopic: null })),
    rosters: [...m.classes()].flatMap((c) => (c.proctor ? c.learners.map((l) => ({ proctorSessionId: c.proctor!.id, learnerSessionId: l.id })) : [])),
    timeline,
    distributions: distributionNames.map((n) => m.distribution(n)).filter((d): d is Distribution => d !== null),
    arrivals: m.arrivals().filter((a) => a.learners > 0),
  };
  const db = openDatabase(file);
  writeModel(db, data);
  db.close();
}
