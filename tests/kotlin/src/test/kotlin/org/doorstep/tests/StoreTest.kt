package org.doorstep.tests

import java.nio.file.Files
import java.nio.file.Path
import java.security.MessageDigest
import org.doorstep.core.Area
import org.doorstep.core.CareTag
import org.doorstep.core.Doorstep
import org.doorstep.core.GeoPoint
import org.doorstep.core.HouseholdFilter
import org.doorstep.core.HouseholdUpdate
import org.doorstep.core.NewResident
import org.doorstep.core.NewVisit
import org.doorstep.core.PhotoFile
import org.doorstep.core.Relation
import org.doorstep.core.RiskLevel
import org.doorstep.core.SearchHit
import org.doorstep.core.DoorstepException
import org.doorstep.core.StoreWindow
import org.doorstep.core.UnitKind
import org.doorstep.core.VisitKind
import org.doorstep.core.VisitOutcome
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/** A grid worker's day through the API, on a real store file. */
class StoreTest {
    @Test
    fun `the window a phone keeps is the app's setting, checked when it is set`() {
        val phone = Doorstep.open(tempDir().resolve("phone.db").toString())
        assertEquals(StoreWindow(months = 3u, closedReportDays = 30u), phone.window(), "the default")
        phone.setWindow(StoreWindow(months = 1u, closedReportDays = 7u))
        assertEquals(StoreWindow(1u, 7u), phone.window())
        val none = assertThrows<DoorstepException.InvalidInput> { phone.setWindow(StoreWindow(0u, 7u)) }
        assertTrue(none.message!!.contains("months"), none.message)
        assertThrows<DoorstepException.InvalidInput> { phone.setWindow(StoreWindow(1_201u, 7u)) }
        assertThrows<DoorstepException.InvalidInput> { phone.setWindow(StoreWindow(3u, 3_651u)) }
        assertEquals(StoreWindow(1u, 7u), phone.window(), "a refused setting changes nothing")
        phone.setWindow(null)
        assertEquals(null, phone.window(), "everything is kept")
        phone.close()
    }

    @Test
    fun `a worker browses her grid, records a visit with a photo and finds it again after a restart`() {
        val dir = tempDir()
        val office = Office(dir)
        val dbPath = dir.resolve("li-na.db")
        var phone = office.phone(dir, "li-na", office.liNa)

        // The hierarchy as the phone received it.
        val grids = phone.units(office.community.id)
        assertEquals(listOf("Grid 3"), grids.map { it.name })
        assertEquals(UnitKind.GRID, grids.single().kind)
        assertEquals(office.liNa.id, phone.deviceUser())

        val grandma = office.household(phone, "12", "301", CareTag.ELDERLY_ALONE)
        val family = office.household(phone, "12", "302")
        phone.addResident(
            NewResident(grandma.id, "Zhao Guilan", "13800000000", "410102194503120021", 1945.toUShort(), Relation.HEAD)
        )
        val updated = phone.updateHousehold(family.id, HouseholdUpdate(risk = RiskLevel.YELLOW, notes = "new tenant"))
        assertEquals(RiskLevel.YELLOW, updated.risk)

        val photo = photoFile(dir, "window.jpg", 7)
        val visit = phone.recordVisit(
            NewVisit(
                household = grandma.id, worker = office.liNa.id, location = GeoPoint(34.7466, 113.6253),
                kind = VisitKind.WELFARE_CHECK, outcome = VisitOutcome.ALL_WELL,
                notes = "Well; asked about the heating",
                photos = listOf(PhotoFile(photo.toString(), "image/jpeg", 640u, 480u)),
            )
        )
        assertEquals(1u, visit.photoCount)

        val stored = phone.photos(visit.id).single()
        assertEquals(sha256(photo), stored.sha256)
        val copy = phone.photoPath(stored.sha256)
        assertNotNull(copy)
        assertTrue(Files.readAllBytes(Path.of(copy!!)).contentEquals(Files.readAllBytes(photo)))

        // Restart the app: everything written is on disk.
        phone.close()
        phone = Doorstep.open(dbPath.toString())
        val history = phone.visitHistory(grandma.id)
        assertEquals(listOf(visit.id), history.map { it.id })
        assertEquals("Well; asked about the heating", history.single().notes)
        assertEquals("Zhao Guilan", phone.residents(grandma.id).single().name)

        val seen = phone.household(grandma.id)
        assertEquals(visit.at, seen.lastVisitAt)
        assertTrue(seen.nextDueAt > visit.at)
        assertEquals(listOf(grandma.id), phone.households(HouseholdFilter(careTag = CareTag.ELDERLY_ALONE)).map { it.id })

        // The morning screen: the family was never visited, the grandmother was just seen.
        val now = System.currentTimeMillis()
        val welfare = phone.welfare(Area.Grid(office.grid.id), now, now + 12 * HOUR)
        assertEquals(listOf(family.id), welfare.neverVisited.map { it.id })
        assertTrue(welfare.visitsOverdue.none { it.id == grandma.id })

        val hits = phone.search("302", 10u)
        assertTrue(hits.any { it is SearchHit.Household && it.id == family.id }, "search finds room 302: $hits")
        phone.close()
    }

    private fun sha256(p: Path): String =
        MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(p)).joinToString("") { "%02x".format(it) }
}
