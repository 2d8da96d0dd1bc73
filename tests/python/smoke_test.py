"""Smoke test of the generated Python bindings: record, query, sync (run by scripts/test).

Loads target/bindings/python/doorstep.py (scripts/build-bindings) and the library beside it,
sets up a grid as the office would, enrols two phones with a `doorstep serve` on 127.0.0.1
(target/debug/doorstep, built by scripts/test), which gives each its certificate, records a visit
on one phone, files a report, syncs it to the second phone as bytes in and bytes out, and checks
that an error arrives as its exception type.
"""

import asyncio
import json
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "target" / "bindings" / "python"))

import doorstep as ds  # noqa: E402


def office(tmp: pathlib.Path):
    store = ds.Doorstep.open(str(tmp / "office.db"))
    unit = lambda kind, parent, name: store.add_unit(ds.NewOrgUnit(kind=kind, parent=parent, name=name))
    district = unit(ds.UnitKind.DISTRICT, None, "Jinshui District")
    street = unit(ds.UnitKind.STREET, district.id, "Fengchan Road Street")
    community = unit(ds.UnitKind.COMMUNITY, street.id, "Dongfeng Community")
    grid = unit(ds.UnitKind.GRID, community.id, "Grid 3")
    for category in ds.default_categories():
        store.set_category(category)
    user = lambda name, role, unit_id: store.add_user(ds.NewUser(name=name, role=role, unit=unit_id, department=None))
    li_na = user("Grid worker Li Na", ds.Role.GRID_WORKER, grid.id)
    zhang_wei = user("Grid worker Zhang Wei", ds.Role.GRID_WORKER, grid.id)
    return store, grid, li_na, zhang_wei


ADMIN_TOKEN = "python-smoke-admin-token"


class Server:
    """A `doorstep serve` process for the test, stopped by `close`."""

    def __init__(self, tmp: pathlib.Path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        env = dict(os.environ, DOORSTEP_LISTEN=f"127.0.0.1:{port}", DOORSTEP_DATABASE=str(tmp / "server.db"),
                   DOORSTEP_ADMIN_TOKEN=ADMIN_TOKEN)
        self.log = open(tmp / "server.log", "wb")
        self.proc = subprocess.Popen([str(ROOT / "target" / "debug" / "doorstep"), "serve"], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert self.proc.poll() is None, (tmp / "server.log").read_text()
            assert time.monotonic() < deadline, "doorstep serve did not answer /healthz within 30 s"
            time.sleep(0.05)

    def admin(self, path: str, body: bytes, content_type: str) -> bytes:
        req = urllib.request.Request(f"{self.url}{path}", data=body, method="POST", headers={
            "authorization": f"Bearer {ADMIN_TOKEN}", "content-type": content_type})
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.read()

    def enrolment_code(self, user_id: str) -> str:
        body = json.dumps({"user_id": user_id, "valid_hours": 24}).encode()
        return json.loads(self.admin("/v1/admin/enrolments", body, "application/json"))["code"]

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()


async def enrolled(server: Server, phones):
    """Enrols each (phone, user id, name) with the server, then syncs each: every phone gets its
    certificate and a directory that lists the others."""
    tokens = [(await phone.enrol(server.url, server.enrolment_code(user_id), name)).token
              for phone, user_id, name in phones]
    for (phone, _, _), token in zip(phones, tokens):
        await phone.sync_with_server(server.url, token)


async def meet(a: ds.Doorstep, b: ds.Doorstep) -> ds.SyncProgress:
    session = await a.start_peer_sync()
    answer = await b.answer_peer()
    while (message := await session.next_message()) is not None:
        reply = await answer.respond(message)
        assert reply.refused is None, reply.refused
        await session.receive(reply.message)
    return session.progress()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        store, grid, li_na, zhang_wei = office(tmp)
        server = Server(tmp)
        try:
            server.admin("/v1/admin/documents?doc=directory", store.export_document("directory"),
                         "application/octet-stream")
            phones = [ds.Doorstep.open(str(tmp / f"{name}.db")) for name in ("li-na", "zhang-wei")]
            asyncio.run(enrolled(server, [(phones[0], li_na.id, "Li Na's phone"),
                                          (phones[1], zhang_wei.id, "Zhang Wei's phone")]))
        finally:
            server.close()
        a, b = phones

        home = a.add_household(ds.NewHousehold(
            grid=grid.id, micro_grid=None, address=ds.Address(building="12", unit="2", room="301"),
            location=None, care_tags=[ds.CareTag.ELDERLY_ALONE], risk=None, notes=""))
        visit = a.record_visit(ds.NewVisit(
            household=home.id, worker=li_na.id, at=None, location=ds.GeoPoint(lat=34.7466, lon=113.6253),
            kind=ds.VisitKind.BELL_CHECK_ANSWERED, outcome=ds.VisitOutcome.ALL_WELL,
            notes="Waved from the window", follow_up=False, photos=[]))
        report = a.file_report(ds.NewReport(
            reporter=li_na.id, category="environment", description="Rubbish piled by building 12",
            location=None, address="Building 12, by the east gate", grid=grid.id, photos=[]))
        assert report.state.status == ds.ReportStatus.OPEN

        progress = asyncio.run(meet(a, b))
        assert progress.done
        assert [v.id for v in b.visit_history(home.id, 0)] == [visit.id]
        assert [r.id for r in b.reports(ds.ReportFilter(status=None, grid=grid.id, category=None,
                                                          near=None, radius_m=None, limit=0))] == [report.id]
        assert b.household(home.id).last_contact_at == visit.at

        try:
            a.record_visit(ds.NewVisit(
                household=home.id, worker=li_na.id, at=None, location=ds.GeoPoint(lat=91.0, lon=0.0),
                kind=ds.VisitKind.ROUTINE, outcome=ds.VisitOutcome.ALL_WELL, notes="", follow_up=False, photos=[]))
            raise AssertionError("a latitude of 91 was accepted")
        except ds.DoorstepError.InvalidInput as e:
            assert "location" in str(e), str(e)

        print(f"python smoke test: ok (visit and report synced in {progress.round} rounds)")


if __name__ == "__main__":
    main()
