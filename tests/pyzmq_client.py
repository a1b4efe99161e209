"""A Python client of the Pingan broker, written from docs/protocol.md alone.

Starts a real pingan-broker on ephemeral ports, publishes JSON events with
PUBJ, checks the acknowledgements (stored, duplicate, refused), follows the
live feed and replays with credit; then, on a second broker with the default
rule pack, lists, shows, acknowledges, annotates and resolves incidents and
verifies a hazard (INCIDENTS, INCIDENT; actions published through ingest).
Usage: pyzmq_client.py BROKER REGISTRY_DIR
"""
import os
import json
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import uuid

import zmq

failures = []
passes = 0


def check(cond, what):
    global passes
    if cond:
        passes += 1
    else:
        failures.append(what)
        print("FAILED:", what, file=sys.stderr)


def uuid7():
    import os, time
    ms = int(time.time() * 1000)
    b = bytearray(ms.to_bytes(6, "big") + os.urandom(10))
    b[6] = 0x70 | (b[6] & 0x0F)
    b[8] = 0x80 | (b[8] & 0x3F)
    return str(uuid.UUID(bytes=bytes(b)))


def hazard(school, hazard_id, area="building"):
    return {
        "id": uuid7(), "type": "hazard.reported", "school": school,
        "occurred_at": "2026-11-29T09:00:00+08:00", "status": "Actual",
        "severity": "Moderate", "scope": "Restricted",
        "body": {"hazard_id": hazard_id, "area": area, "grade": "general",
                 "description": "操场围栏破损", "location": "操场东侧",
                 "found_by": "safety_officer"},
    }


def start_broker(broker, data, store, extra=()):
    return subprocess.Popen(
        [broker, "--data", store, "--ingest", "tcp://127.0.0.1:*",
         "--feed", "tcp://127.0.0.1:*", "--query", "tcp://127.0.0.1:*",
         "--registry", data + "/schools.csv", "--districts", data + "/districts.csv",
         "--log-level", "warn"] + list(extra), stdout=subprocess.PIPE, text=True)


def incidents(broker, data):
    """INCIDENTS and INCIDENT on the query socket of a broker running rules."""
    rules = os.path.join(data, "..", "config", "rules", "yichang-default.yaml")
    store = tempfile.mkdtemp(prefix="pingan-py-inc-")
    proc = start_broker(broker, data, store, ["--rules", rules])
    try:
        m = re.search(r"ingest=(\S+) feed=(\S+) query=(\S+)", proc.stdout.readline())
        ingest, query = m.group(1), m.group(3)
        ctx = zmq.Context()
        pub = ctx.socket(zmq.DEALER)
        pub.setsockopt(zmq.LINGER, 0)
        pub.connect(ingest)
        report = hazard("420502K001", "PY-INC")
        report["occurred_at"] = time_now()
        pub.send_multipart([b"PUBJ", b"h", json.dumps(report).encode()])
        assert pub.poll(10000), "no reply"
        check("offset" in json.loads(pub.recv_multipart()[2]), "hazard stored")

        q = ctx.socket(zmq.DEALER)
        q.setsockopt(zmq.LINGER, 0)
        q.connect(query)
        q.send_multipart([b"INCIDENTS", b"i1", json.dumps({"state": "open"}).encode()])
        assert q.poll(5000), "no INCIDENTS reply"
        f = q.recv_multipart()
        check(f[0] == b"INCIDENTS" and f[1] == b"i1", "INCIDENTS reply with the tag")
        listed = json.loads(f[2])
        check(len(listed["incidents"]) == 1 and listed["truncated"] is False, "one open incident")
        inc = listed["incidents"][0]
        check(inc["subject"] == "PY-INC" and inc["school"] == "420502K001", "incident fields")

        q.send_multipart([b"INCIDENTS", b"i2", json.dumps({"school": "999999X999"}).encode()])
        assert q.poll(5000)
        f = q.recv_multipart()
        check(f[0] == b"ERR" and json.loads(f[2])["code"] == "unknown_school",
              "unknown school in a filter is ERR unknown_school")

        # Acknowledge through ingest, with the incident's school, as an event.
        ack = {"id": uuid7(), "type": "incident.acknowledged", "school": inc["school"],
               "occurred_at": time_now(), "status": inc["mode"],
               "body": {"incident_id": inc["id"], "note": "已电话联系校长"}}
        pub.send_multipart([b"PUBJ", b"a", json.dumps(ack).encode()])
        assert pub.poll(10000)
        check("offset" in json.loads(pub.recv_multipart()[2]), "acknowledgement stored")

        # INCIDENT is a single-reply command: REQ works for it.
        req = ctx.socket(zmq.REQ)
        req.setsockopt(zmq.LINGER, 0)
        req.connect(query)
        req.send_multipart([b"INCIDENT", b"s1", json.dumps({"id": inc["id"]}).encode()])
        assert req.poll(5000), "no INCIDENT reply"
        f = req.recv_multipart()
        check(f[0] == b"INCIDENT" and f[1] == b"s1", "INCIDENT reply over REQ")
        shown = json.loads(f[2])
        check(shown["incident"]["state"] == "acknowledged", "acknowledged")
        types = [e["type"] for e in shown["timeline"]]
        check(types[0] == "hazard.reported" and "incident.opened" in types
              and types[-1] == "incident.acknowledged", "timeline from report to ack")

        # A note: recorded in the timeline, the state unchanged.
        note = {"id": uuid7(), "type": "incident.note", "school": inc["school"],
                "occurred_at": time_now(), "status": inc["mode"],
                "body": {"incident_id": inc["id"], "text": "围栏已临时封闭"}}
        pub.send_multipart([b"PUBJ", b"n", json.dumps(note).encode()])
        assert pub.poll(10000)
        check("offset" in json.loads(pub.recv_multipart()[2]), "note stored")
        shown = show(req, inc["id"])
        check(shown["incident"]["state"] == "acknowledged", "a note leaves the state as it was")
        notes = [e for e in shown["timeline"] if e["type"] == "incident.note"]
        check(len(notes) == 1 and notes[0]["id"] == note["id"]
              and notes[0]["body"]["text"] == "围栏已临时封闭", "the note is in the timeline")

        # incident.resolved does not close a hazard: it is recorded, the hazard stays open.
        early = {"id": uuid7(), "type": "incident.resolved", "school": inc["school"],
                 "occurred_at": time_now(), "status": inc["mode"],
                 "body": {"incident_id": inc["id"], "resolution": "已修好"}}
        pub.send_multipart([b"PUBJ", b"r0", json.dumps(early).encode()])
        assert pub.poll(10000)
        check("offset" in json.loads(pub.recv_multipart()[2]), "resolution of a hazard stored")
        shown = show(req, inc["id"])
        check(shown["incident"]["state"] == "acknowledged", "a resolution does not close a hazard")

        # A hazard closes when someone other than the fixer verifies its rectification.
        fix = {"id": uuid7(), "type": "hazard.rectified", "school": inc["school"],
               "occurred_at": time_now(), "status": inc["mode"],
               "body": {"hazard_id": inc["subject"], "rectified_by": "wang",
                        "description": "已更换围栏"}}
        pub.send_multipart([b"PUBJ", b"f", json.dumps(fix).encode()])
        assert pub.poll(10000)
        check("offset" in json.loads(pub.recv_multipart()[2]), "rectification stored")
        check(show(req, inc["id"])["incident"]["state"] == "rectified", "rectified")
        verify = {"id": uuid7(), "type": "hazard.verified", "school": inc["school"],
                  "occurred_at": time_now(), "status": inc["mode"],
                  "body": {"hazard_id": inc["subject"], "verifier": "li", "result": "pass",
                           "evidence": "现场复查合格"}}
        pub.send_multipart([b"PUBJ", b"v", json.dumps(verify).encode()])
        assert pub.poll(10000)
        check("offset" in json.loads(pub.recv_multipart()[2]), "verification stored")
        shown = show(req, inc["id"])
        check(shown["incident"]["state"] == "closed" and shown["incident"]["closed_at"],
              "verified hazard closed")
        ids = [e["id"] for e in shown["timeline"]]
        closed = [e for e in shown["timeline"] if e["type"] == "incident.closed"]
        check(fix["id"] in ids and verify["id"] in ids
              and ids.index(fix["id"]) < ids.index(verify["id"]),
              "rectification and verification in the timeline")
        check(len(closed) == 1 and ids[-1] == closed[0]["id"]
              and closed[0]["body"]["incident_id"] == inc["id"], "the broker records the closing")

        # A plain incident (an emergency report) closes with incident.resolved.
        emergency = {"id": uuid7(), "type": "incident.reported", "school": "420502K001",
                     "occurred_at": time_now(), "status": "Actual", "severity": "Moderate",
                     "scope": "Restricted",
                     "body": {"incident_id": "PY-EM", "category": "accident",
                              "provisional_level": "IV", "reporter_role": "principal",
                              "summary": "学生在楼梯摔倒"}}
        pub.send_multipart([b"PUBJ", b"e", json.dumps(emergency).encode()])
        assert pub.poll(10000)
        check("offset" in json.loads(pub.recv_multipart()[2]), "emergency report stored")
        req.send_multipart([b"INCIDENT", b"e1",
                            json.dumps({"subject": "PY-EM", "school": "420502K001"}).encode()])
        assert req.poll(5000)
        f = req.recv_multipart()
        check(f[0] == b"INCIDENT", "emergency incident opened")
        em = json.loads(f[2])["incident"]
        check(em["state"] == "open" and em["kind"] == "emergency", "emergency open")
        done = {"id": uuid7(), "type": "incident.resolved", "school": em["school"],
                "occurred_at": time_now(), "status": em["mode"],
                "body": {"incident_id": em["id"], "resolution": "学生已送医，家长已到场"}}
        pub.send_multipart([b"PUBJ", b"r1", json.dumps(done).encode()])
        assert pub.poll(10000)
        check("offset" in json.loads(pub.recv_multipart()[2]), "resolution stored")
        shown = show(req, em["id"])
        check(shown["incident"]["state"] == "closed" and shown["incident"]["closed_at"],
              "resolved incident closed")
        types = [e["type"] for e in shown["timeline"]]
        ids = [e["id"] for e in shown["timeline"]]
        check(done["id"] in ids and shown["timeline"][ids.index(done["id"])]["body"]["resolution"]
              == "学生已送医，家长已到场", "the resolution is in the timeline")
        check(types[-1] == "incident.closed" and ids.index(done["id"]) < len(ids) - 1,
              "the broker records the closing after the resolution")

        req.send_multipart([b"INCIDENT", b"s2",
                            json.dumps({"subject": "PY-INC", "school": "420502K001"}).encode()])
        assert req.poll(5000)
        check(json.loads(req.recv_multipart()[2])["incident"]["id"] == inc["id"], "by subject")
        req.send_multipart([b"INCIDENT", b"s3", json.dumps({"id": "INC-0000000000000000"}).encode()])
        assert req.poll(5000)
        f = req.recv_multipart()
        check(f[0] == b"ERR" and json.loads(f[2])["code"] == "not_found", "unknown id not_found")
    finally:
        proc.terminate()
        check(proc.wait(timeout=30) == 0, "second broker exits 0 on SIGTERM")
        shutil.rmtree(store, ignore_errors=True)


def show(req, incident_id):
    """INCIDENT by id over REQ: the reply's object."""
    req.send_multipart([b"INCIDENT", b"show", json.dumps({"id": incident_id}).encode()])
    assert req.poll(5000), "no INCIDENT reply"
    f = req.recv_multipart()
    assert f[0] == b"INCIDENT", f
    return json.loads(f[2])


def time_now():
    import datetime
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


def main():
    broker, data = sys.argv[1], sys.argv[2]
    store = tempfile.mkdtemp(prefix="pingan-py-")
    proc = start_broker(broker, data, store)
    try:
        line = proc.stdout.readline()
        m = re.search(r"ingest=(\S+) feed=(\S+) query=(\S+)", line)
        ingest, feed, query = m.group(1), m.group(2), m.group(3)
        ctx = zmq.Context()

        sub = ctx.socket(zmq.SUB)
        sub.connect(feed)
        sub.setsockopt(zmq.SUBSCRIBE, b"s/420502/")
        import time
        time.sleep(0.3)

        pub = ctx.socket(zmq.DEALER)
        pub.setsockopt(zmq.LINGER, 0)
        pub.connect(ingest)
        events = [hazard("420502K001", "PY-1"), hazard("999999X999", "PY-2"),
                  hazard("420502K001", "PY-3", area="roof")]
        pub.send_multipart([b"PUBJ", b"tag-1"] + [json.dumps(e).encode() for e in events])
        assert pub.poll(10000), "no reply"
        reply = pub.recv_multipart()
        check(reply[0] == b"RESJ" and reply[1] == b"tag-1", "reply is RESJ with the tag")
        results = [json.loads(f) for f in reply[2:]]
        check(len(results) == 3, "one result per event")
        check(results[0].get("offset") == 1 and results[0]["duplicate"] is False, "first stored at 1")
        check(results[0]["id"] == events[0]["id"], "result carries the id")
        check(results[1]["error"]["code"] == "unknown_school", "unknown school refused")
        check(results[2]["error"]["code"] == "unknown_enum" and
              results[2]["error"]["message"].startswith("body.area"), "bad enum names the field")

        pub.send_multipart([b"PUBJ", b"tag-2", json.dumps(events[0]).encode()])
        assert pub.poll(10000), "no reply"
        again = json.loads(pub.recv_multipart()[2])
        check(again["duplicate"] is True and again["offset"] == 1, "resend is a duplicate of 1")

        # Binary result frames for PUB: a garbage frame is refused with code 11.
        pub.send_multipart([b"PUB", b"tag-3", b"not an event"])
        assert pub.poll(10000), "no reply"
        r = pub.recv_multipart()
        outcome, _, code = struct.unpack_from("<BBH", r[2])
        check(r[0] == b"RES" and outcome == 2 and code == 11, "binary nack undecodable")

        pub.send_multipart([b"NOPE", b"tag-4"])
        assert pub.poll(10000), "no reply"
        r = pub.recv_multipart()
        check(r[0] == b"ERR" and json.loads(r[2])["code"] == "bad_command", "unknown command ERR")

        # Live feed: the stored event, with its offset.
        assert sub.poll(5000), "nothing on the feed"
        topic, off, body = sub.recv_multipart()
        check(topic.startswith(b"s/420502/420502K001/hazard.reported"), "feed topic")
        check(struct.unpack("<Q", off)[0] == 1, "feed offset")

        # Replay as JSON with credit 1: one event, then the end once credit comes.
        for e in range(5):
            pub.send_multipart([b"PUBJ", b"more", json.dumps(hazard("420502K001", "M%d" % e)).encode()])
            pub.poll(10000)
            pub.recv_multipart()
        q = ctx.socket(zmq.DEALER)
        q.setsockopt(zmq.LINGER, 0)
        q.connect(query)
        q.send_multipart([b"REPLAY", b"r1", json.dumps({"from": 1, "credit": 1, "format": "json",
                                                        "school": "420502K001"}).encode()])
        got = []
        while q.poll(1000):
            f = q.recv_multipart()
            if f[0] == b"EVT":
                # (offset, event) pairs after the tag
                for i in range(2, len(f), 2):
                    check(struct.unpack("<Q", f[i])[0] == json.loads(f[i + 1])["offset"],
                          "EVT offset frame matches the event")
                    got.append(json.loads(f[i + 1]))
                    q.send_multipart([b"CREDIT", b"r1", json.dumps({"credit": 1}).encode()])
            elif f[0] == b"END":
                end = json.loads(f[2])
                break
        check([g["offset"] for g in got] == [1, 2, 3, 4, 5, 6], "replay in order, all six")
        check(got[0]["body"]["description"] == "操场围栏破损", "chinese text intact")
        check(end["count"] == 6, "END counts the events")

        # The same events binary (two frames each) and packed (offset u64 LE,
        # length u32 LE, bytes, many in one frame): the same offsets and bytes.
        def replay_binary(fmt):
            q.send_multipart([b"REPLAY", fmt.encode(), json.dumps({"from": 1, "credit": 100,
                                                                   "format": fmt}).encode()])
            out = []
            while q.poll(5000):
                f = q.recv_multipart()
                if f[0] == b"EVT" and fmt == "binary":
                    for i in range(2, len(f), 2):
                        out.append((struct.unpack("<Q", f[i])[0], f[i + 1]))
                elif f[0] == b"EVT":
                    check(len(f) == 3, "packed EVT: one frame after the tag")
                    frame, at = f[2], 0
                    while at < len(frame):
                        off, n = struct.unpack_from("<QI", frame, at)
                        out.append((off, frame[at + 12:at + 12 + n]))
                        at += 12 + n
                    check(at == len(frame), "packed frame splits exactly into entries")
                elif f[0] == b"END":
                    return out
            return out
        binary = replay_binary("binary")
        packed = replay_binary("packed")
        check(len(binary) == 6 and packed == binary, "packed replay gives the binary one's events")

        q.send_multipart([b"STATS", b"s1"])
        assert q.poll(5000)
        stats = json.loads(q.recv_multipart()[2])
        check(stats["head"] == 6 and stats["by_type"]["hazard.reported"] == 6, "stats")
    finally:
        proc.terminate()
        rc = proc.wait(timeout=30)
        check(rc == 0, "broker exits 0 on SIGTERM")
        shutil.rmtree(store, ignore_errors=True)
    incidents(broker, data)
    print("%d passed, %d failed" % (passes, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
