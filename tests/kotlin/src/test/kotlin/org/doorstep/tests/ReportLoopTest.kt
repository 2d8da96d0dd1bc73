package org.doorstep.tests

import org.doorstep.core.Classification
import org.doorstep.core.DoorstepException
import org.doorstep.core.GeoPoint
import org.doorstep.core.NewReport
import org.doorstep.core.NewReportEvent
import org.doorstep.core.PhotoFile
import org.doorstep.core.ReportEventKind
import org.doorstep.core.ReportFilter
import org.doorstep.core.ReportStatus
import org.doorstep.core.RiskLevel
import org.doorstep.core.Step
import org.doorstep.core.UnitKind
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/** A snap-and-report issue through its closed loop, with its deadlines. */
class ReportLoopTest {
    @Test
    fun `a blocked fire exit goes from snapshot to closed, and a step out of turn is refused`() {
        val dir = tempDir()
        val office = Office(dir)
        // Every step here is taken by a different user, so the loop runs at the office's desk
        // (a store registered to no device records for anyone); a phone records only as the
        // user it is registered to, which every other replica would check anyway.
        val liPhone = office.phone(dir, "li-na", office.liNa)
        val phone = office.store
        val photo = photoFile(dir, "exit.jpg", 3)
        val asVolunteer = assertThrows<DoorstepException.InvalidInput> {
            liPhone.fileReport(
                NewReport(
                    reporter = office.volunteer.id, category = "safety-hazard", description = "Bicycles in the stairwell",
                    location = GeoPoint(34.7470, 113.6250), address = "Building 12", grid = office.grid.id, photos = listOf(),
                )
            )
        }
        assertTrue(asVolunteer.message!!.contains("records only as"), "readable reason: ${asVolunteer.message}")
        val hazard = phone.categories().single { it.id == "safety-hazard" }
        assertEquals(24u, hazard.triageHours)

        val filed = phone.fileReport(
            NewReport(
                reporter = office.volunteer.id, category = "safety-hazard",
                description = "Bicycles block the fire exit of building 12",
                location = GeoPoint(34.7470, 113.6250), address = "Building 12, stairwell 2", grid = office.grid.id,
                photos = listOf(PhotoFile(photo.toString(), "image/jpeg", 1024u, 768u)),
            )
        )
        assertEquals(ReportStatus.OPEN, filed.state.status)
        assertEquals(Step.TRIAGE, filed.state.nextDueStep)
        assertEquals(filed.createdAt + 24 * HOUR, filed.state.triageDue)
        assertEquals(1, filed.photos.size)

        // Untriaged two days later: overdue at the street, by about a day.
        val later = filed.createdAt + 48 * HOUR
        val overdue = phone.overdueReports(office.street.id, later).single()
        assertEquals(filed.id, overdue.id)
        assertEquals(Step.TRIAGE, overdue.step)
        assertEquals(24 * HOUR, overdue.overdueMs)

        fun step(author: String, kind: ReportEventKind, f: (NewReportEvent) -> NewReportEvent = { it }) =
            phone.addReportEvent(f(NewReportEvent(report = filed.id, author = author, kind = kind)))

        step(office.liNa.id, ReportEventKind.TRIAGED) {
            it.copy(classification = Classification.GENERAL, risk = RiskLevel.ORANGE)
        }
        step(office.liNa.id, ReportEventKind.DISPATCHED) { it.copy(target = FIRE_SAFETY) }

        // A volunteer may not close a report: refused with the reason, nothing written.
        val refused = assertThrows<DoorstepException.InvalidInput> {
            step(office.volunteer.id, ReportEventKind.CLOSED)
        }
        assertTrue(refused.message!!.contains("close"), "readable reason: ${refused.message}")
        assertEquals(3, phone.report(filed.id).events.size)

        step(office.handler.id, ReportEventKind.ACCEPTED)
        val fixed = photoFile(dir, "exit-cleared.jpg", 4)
        step(office.handler.id, ReportEventKind.RESOLVED) {
            it.copy(note = "Bicycles moved to the shed", photos = listOf(PhotoFile(fixed.toString(), "image/jpeg", 1024u, 768u)))
        }
        step(office.liNa.id, ReportEventKind.FEEDBACK_SENT)
        step(office.volunteer.id, ReportEventKind.CONFIRMED) { it.copy(score = 5.toUByte()) }
        step(office.liNa.id, ReportEventKind.CLOSED)

        val done = phone.report(filed.id)
        assertEquals(ReportStatus.CLOSED, done.state.status)
        assertEquals(Classification.GENERAL, done.state.classification)
        assertEquals(FIRE_SAFETY, done.state.assignee)
        assertEquals(office.handler.id, done.state.acceptedBy)
        assertEquals(5.toUByte(), done.state.satisfaction)
        assertEquals(UnitKind.GRID, done.state.level)
        assertNull(done.state.nextDueStep)
        assertEquals(listOf(ReportEventKind.SUBMITTED, ReportEventKind.TRIAGED, ReportEventKind.DISPATCHED,
            ReportEventKind.ACCEPTED, ReportEventKind.RESOLVED, ReportEventKind.FEEDBACK_SENT,
            ReportEventKind.CONFIRMED, ReportEventKind.CLOSED), done.events.map { it.kind })
        assertEquals(1, done.events.first { it.kind == ReportEventKind.RESOLVED }.photos.size)
        assertTrue(phone.overdueReports(office.street.id, later).isEmpty())
        assertEquals(listOf(filed.id), phone.reports(ReportFilter(status = ReportStatus.CLOSED)).map { it.id })
        phone.close()
        liPhone.close()
    }
}
