package org.doorstep.tests

import java.util.concurrent.CopyOnWriteArrayList
import kotlinx.coroutines.async
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import kotlinx.coroutines.delay
import org.doorstep.android.changes
import org.doorstep.core.Change
import org.doorstep.core.ChangeOrigin
import org.doorstep.core.DoorstepObserver
import org.doorstep.core.NewVisit
import org.doorstep.core.SyncStatus
import org.doorstep.core.VisitKind
import org.doorstep.core.VisitOutcome
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

/** Change and sync-status notifications through the observer trait and the Flow layer. */
class ObserverTest {
    private val dir = tempDir()
    private val office = Office(dir)
    private val phone = office.phone(dir, "li-na", office.liNa)
    private val home = office.household(phone, "12", "301")
    private val visit = NewVisit(household = home.id, worker = office.liNa.id, kind = VisitKind.ROUTINE, outcome = VisitOutcome.ALL_WELL)

    @Test
    fun `a write tells each observer which document changed and that a change awaits the server`() {
        val changes = CopyOnWriteArrayList<Change>()
        val statuses = CopyOnWriteArrayList<SyncStatus>()
        val seenFromCallback = CopyOnWriteArrayList<Int>()
        val id = phone.addObserver(object : DoorstepObserver {
            override fun onChange(change: Change) {
                changes += change
                // Calling back into the store from the notification does not deadlock: no Rust
                // lock is held while the app's code runs.
                seenFromCallback += phone.visitHistory(home.id).size
            }
            override fun onSyncStatus(status: SyncStatus) {
                statuses += status
            }
        })
        val pendingBefore = phone.syncStatus().pendingChanges

        phone.recordVisit(visit)
        assertEquals(listOf(Change(ChangeOrigin.LOCAL, listOf(office.monthVisits))), changes)
        assertEquals(listOf(1), seenFromCallback)
        assertEquals(1, statuses.size)
        assertEquals(pendingBefore + 1u, statuses.single().pendingChanges)

        // A read changes nothing and notifies nobody.
        phone.households(org.doorstep.core.HouseholdFilter())
        assertEquals(1, changes.size)

        assertTrue(phone.removeObserver(id))
        phone.recordVisit(visit)
        assertEquals(1, changes.size)
    }

    @Test
    fun `an observer that throws fails neither the write nor the other observers`() {
        val heard = CopyOnWriteArrayList<Change>()
        phone.addObserver(object : DoorstepObserver {
            override fun onChange(change: Change) = throw IllegalStateException("a bug in the app's observer")
            override fun onSyncStatus(status: SyncStatus) = throw IllegalStateException("another one")
        })
        phone.addObserver(object : DoorstepObserver {
            override fun onChange(change: Change) {
                heard += change
            }
            override fun onSyncStatus(status: SyncStatus) {}
        })
        val recorded = phone.recordVisit(visit)
        assertEquals(listOf(recorded.id), phone.visitHistory(home.id).map { it.id })
        assertEquals(1, heard.size)
    }

    @Test
    fun `the changes Flow emits local writes`() = runBlocking {
        val next = async { phone.changes().first() }
        // The collector registers its observer when it starts: write until it has heard one.
        withTimeout(10_000) {
            while (!next.isCompleted) {
                phone.recordVisit(visit)
                delay(20)
            }
        }
        val change = next.await()
        assertEquals(ChangeOrigin.LOCAL, change.origin)
        assertEquals(listOf(office.monthVisits), change.documents)
    }
}
