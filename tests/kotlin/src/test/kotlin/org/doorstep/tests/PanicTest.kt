package org.doorstep.tests

import org.doorstep.core.DoorstepException
import org.doorstep.core.InternalException
import org.doorstep.core.NewVisit
import org.doorstep.core.StoreWindow
import org.doorstep.core.VisitKind
import org.doorstep.core.VisitOutcome
import org.doorstep.core.panicOutsideStoreForTest
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/** A panic in Rust never takes the JVM down (these exports exist only with `test-exports`). */
class PanicTest {
    @Test
    fun `a panic inside a store call is DoorstepException Internal and the store keeps working`() {
        val dir = tempDir()
        val office = Office(dir)
        val phone = office.phone(dir, "li-na", office.liNa)
        val home = office.household(phone, "12", "301")
        val visit = NewVisit(household = home.id, worker = office.liNa.id, kind = VisitKind.ROUTINE, outcome = VisitOutcome.ALL_WELL)
        val before = phone.recordVisit(visit)
        phone.setWindow(StoreWindow(months = 6u, closedReportDays = 60u))

        val e = assertThrows<DoorstepException.Internal> { phone.panicForTest() }
        assertTrue(e.message!!.contains("deliberate panic"), e.message)

        // Reopened from disk: what was written is there, and writing goes on.
        val after = phone.recordVisit(visit)
        assertEquals(setOf(before.id, after.id), phone.visitHistory(home.id).map { it.id }.toSet())
        assertEquals(StoreWindow(6u, 60u), phone.window(), "the app's window setting survives the reopening")
    }

    @Test
    fun `a panic outside the store is uniffi's InternalException`() {
        val e = assertThrows<InternalException> { panicOutsideStoreForTest() }
        assertTrue(e.message!!.contains("deliberate panic"), e.message)
        // Still alive, and the library still answers.
        assertThrows<InternalException> { panicOutsideStoreForTest() }
    }
}
