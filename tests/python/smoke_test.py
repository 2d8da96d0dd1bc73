"""Smoke test of the generated Python bindings: record, query, sync (run by scripts/test).

Loads target/bindings/python/doorstep.py (scripts/build-bindings) and the library beside it,
sets up a grid as the office would, records a visit on one phone, files a report, syncs it to a
second phone as bytes in and bytes out, and checks that an error arrives as its exception type.
"""

import asyncio
import pathlib
import sys
import tempfile

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
        phones = []
        for name, user in (("li-na", li_na), ("zhang-wei", zhang_wei)):
            phone = ds.Doorstep.open(str(tmp / f"{name}.db"))
            store.add_device(user.id, phone.actor_id())
            phones.append(phone)
        for phone in phones:
            phone.import_document("directory", store.export_document("directory"))
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
