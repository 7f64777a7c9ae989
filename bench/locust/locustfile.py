"""Locust version of bench/replay.ts's synthetic scenario, for bench/generator-vs-locust.ts.

Classes of 24 learners and one proctor against a protocol v1 bus (docs/protocol.md), written the
way a platform engineer would for Locust 2.12: FastHttpUser (geventhttpclient), one greenlet per
user for its tasks and one background greenlet per user for its long-poll.

- Learner: publishes one event to its session topic every PUBLISH_EVERY_S (10 s, absolute pacing,
  phases spread by the ramp) carrying an id and the send time; keeps a long-poll open on its
  control topic (timeout_s 20, re-polls at once).
- Proctor: long-polls its roster's 24 session topics; publishes a control to one learner of its
  roster every CONTROL_EVERY_S (30 s).
- Delivery latency of learner events is measured at the proctor (time.time() at receipt minus the
  send time in the message; same host, same clock) and reported to Locust's statistics as request
  type DELIVERY, so Locust's own percentiles (and --csv, --reset-stats) cover it.
- Schedule lag (how late a learner's publish started compared with its 10 s schedule) is reported
  as request type LAG: the generator measuring itself.

Environment: REHEARSE_NONCE (topic prefix, fresh per run), PUBLISH_EVERY_S, CONTROL_EVERY_S,
POLL_TIMEOUT_S, LOCUST_POOL=shared|per-user, LOCUST_POOL_SIZE, LOCUST_GC_FREEZE=1 (gc.freeze() once
all users are spawned), LOCUST_GC_STATS=1 (time the collector's pauses), LOCUST_USER=fast|http (http: HttpUser,
python-requests, a session per user; the pool settings do not apply).

Connections: by default every user's FastHttpSession shares one HTTPClientPool (Locust's documented
`client_pool`), so a process holds about one socket per open long-poll plus the publishes in
flight, as rehearse does; LOCUST_POOL=per-user gives Locust's default (a pool per user, so a
learner holds two sockets: its long-poll and its publish connection).
"""

import gc
import itertools
import json
import os
import time
import uuid

import gevent
from geventhttpclient.client import HTTPClientPool
from locust import FastHttpUser, HttpUser, events, task
import locust.runners

if not locust.runners.__version__:
    # Debian's python3-locust 2.12.1 ships locust/_version.py with version = '', and a master takes
    # a worker that reports an empty version for a pre-2.0 one and refuses it ("An old (pre 2.0)
    # worker tried to connect"), so distributed mode (bench/scale-out.ts) cannot start. The master
    # and every worker load this file before their runner exists: both then report the same version.
    locust.runners.__version__ = "2.12.1"

NONCE = os.environ.get("REHEARSE_NONCE") or f"locust{uuid.uuid4().hex[:8]}"
PUBLISH_EVERY_S = float(os.environ.get("PUBLISH_EVERY_S", "10"))
CONTROL_EVERY_S = float(os.environ.get("CONTROL_EVERY_S", "30"))
POLL_TIMEOUT_S = float(os.environ.get("POLL_TIMEOUT_S", "20"))
CLASS_SIZE = 24
# Above the poll timeout on purpose: a long-poll silent for timeout_s is healthy.
NETWORK_TIMEOUT_S = POLL_TIMEOUT_S + 15

SHARED_POOL = (
    HTTPClientPool(
        concurrency=int(os.environ.get("LOCUST_POOL_SIZE", "12000")),
        network_timeout=NETWORK_TIMEOUT_S,
        connection_timeout=10.0,
        insecure=True,
    )
    if os.environ.get("LOCUST_POOL", "shared") == "shared"
    else None
)

_learner_ids = itertools.count()
_proctor_ids = itertools.count()
_message_ids = itertools.count()
_counts = {"learners": 0, "proctors": 0, "published": 0, "delivered": 0, "controls_delivered": 0, "poll_errors": 0}

PUBLISH = "/v1/events/publish"
SUBSCRIBE = "/v1/events/subscribe"


def learner_name(index):
    return f"c{index // CLASS_SIZE}.l{index % CLASS_SIZE}"


def events_topic(learner):
    return f"{NONCE}.{learner}.events"


def control_topic(learner):
    return f"{NONCE}.{learner}.control"


def report(request_type, name, ms):
    events.request.fire(
        request_type=request_type, name=name, response_time=ms, response_length=0, exception=None, context={}
    )


USE_HTTP_USER = os.environ.get("LOCUST_USER", "fast") == "http"
# HttpUser (python-requests) has no default timeout; FastHttpUser takes its timeouts as class attributes.
TIMEOUT = {"timeout": NETWORK_TIMEOUT_S} if USE_HTTP_USER else {}


class BusUser(HttpUser if USE_HTTP_USER else FastHttpUser):
    abstract = True
    network_timeout = NETWORK_TIMEOUT_S
    connection_timeout = 10.0
    client_pool = SHARED_POOL

    def start_poll(self, actor, topics):
        """Long-poll loop in its own greenlet, so the user's tasks (publishes) run beside it."""
        self.cursors = {t: 0 for t in topics}  # topics are fresh per run: 0 misses nothing
        self.poller = gevent.spawn(self.poll_forever, actor)

    def poll_forever(self, actor):
        while True:
            body = {"actor": actor, "topics": self.cursors, "timeout_s": POLL_TIMEOUT_S}
            with self.client.post(SUBSCRIBE, json=body, name="subscribe", catch_response=True, **TIMEOUT) as r:
                if r.status_code != 200:
                    _counts["poll_errors"] += 1
                    r.failure(f"status {r.status_code}")
                    gevent.sleep(1)
                    continue
                answer = r.json()
                r.success()
            now = time.time()
            for m in answer["messages"]:
                self.received(m, now)
            for topic, cursor in answer["cursors"].items():
                if topic in self.cursors:
                    self.cursors[topic] = cursor

    def on_stop(self):
        poller = getattr(self, "poller", None)
        if poller is not None:
            poller.kill(block=False)


class Learner(BusUser):
    weight = CLASS_SIZE

    def on_start(self):
        index = next(_learner_ids)
        _counts["learners"] += 1
        self.actor = learner_name(index)
        self.topic = events_topic(self.actor)
        self.next_at = time.time()
        self.start_poll(self.actor, [control_topic(self.actor)])

    def wait_time(self):
        # Absolute pacing: the schedule does not drift by the time a publish took.
        return max(0.0, self.next_at - time.time())

    @task
    def publish_event(self):
        now = time.time()
        report("LAG", "learner publish", max(0.0, (now - self.next_at) * 1000))
        self.next_at += PUBLISH_EVERY_S
        mid = next(_message_ids)
        message = {"topic": self.topic, "id": str(mid), "data": {"id": mid, "sent": now, "from": self.actor}}
        self.client.post(PUBLISH, json={"actor": self.actor, "messages": [message]}, name="publish event", **TIMEOUT)
        _counts["published"] += 1

    def received(self, message, now):
        data = message.get("data")
        if isinstance(data, dict) and "sent" in data:
            _counts["controls_delivered"] += 1
            report("DELIVERY", "proctor control", (now - data["sent"]) * 1000)


class Proctor(BusUser):
    weight = 1

    def on_start(self):
        index = next(_proctor_ids)
        _counts["proctors"] += 1
        self.actor = f"c{index}.p"
        self.roster = [f"c{index}.l{i}" for i in range(CLASS_SIZE)]
        self.next_target = 0
        # The first control after one interval, as in bench/replay.ts's plan.
        self.started = time.time()
        self.next_at = self.started + CONTROL_EVERY_S
        self.start_poll(self.actor, [events_topic(l) for l in self.roster])

    def wait_time(self):
        return max(0.0, self.next_at - time.time())

    @task
    def publish_control(self):
        if time.time() < self.next_at:  # the first task call comes before any wait
            return
        self.next_at += CONTROL_EVERY_S
        target = self.roster[self.next_target % len(self.roster)]
        self.next_target += 1
        mid = next(_message_ids)
        message = {"topic": control_topic(target), "id": str(mid), "data": {"id": mid, "sent": time.time(), "from": self.actor}}
        self.client.post(PUBLISH, json={"actor": self.actor, "messages": [message]}, name="publish control", **TIMEOUT)

    def received(self, message, now):
        data = message.get("data")
        # Events sent before this proctor joined were published to nobody (as in rehearse's plan,
        # where only proctors present at publish time are owed a delivery): not a latency.
        if isinstance(data, dict) and "sent" in data and data["sent"] >= self.started:
            _counts["delivered"] += 1
            report("DELIVERY", "learner event", (now - data["sent"]) * 1000)


if os.environ.get("LOCUST_GC_STATS") == "1":
    # Diagnostic only (off in the benchmark): how long the collector stops every greenlet.
    _gc = {"collections": [0, 0, 0], "max_pause_ms": [0.0, 0.0, 0.0], "total_pause_ms": [0.0, 0.0, 0.0]}
    _gc_started = [0.0]

    def _gc_timer(phase, info):
        if phase == "start":
            _gc_started[0] = time.perf_counter()
            return
        g = info["generation"]
        pause = (time.perf_counter() - _gc_started[0]) * 1000
        _gc["collections"][g] += 1
        _gc["max_pause_ms"][g] = max(_gc["max_pause_ms"][g], pause)
        _gc["total_pause_ms"][g] += pause

    gc.callbacks.append(_gc_timer)
    _counts["gc"] = _gc


if os.environ.get("LOCUST_GC_FREEZE") == "1":
    # The tuning a platform engineer might add after seeing the collector's pauses (not stock
    # Locust 2.12): once every user exists, move all objects out of the collector's reach, so a
    # full collection scans only what was allocated since.
    @events.spawning_complete.add_listener
    def _freeze(user_count, **_kwargs):
        gc.collect()
        gc.freeze()


@events.quitting.add_listener
def _print_counts(environment, **_kwargs):
    # One machine-readable line for bench/generator-vs-locust.ts.
    print("LOCUST-COUNTS " + json.dumps(_counts), flush=True)
