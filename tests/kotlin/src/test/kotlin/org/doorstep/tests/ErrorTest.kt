package org.doorstep.tests

import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.doorstep.core.Doorstep
import org.doorstep.core.DoorstepException
import org.doorstep.core.GeoPoint
import org.doorstep.core.NewResident
import org.doorstep.core.NewVisit
import org.doorstep.core.PhotoFile
import org.doorstep.core.Relation
import org.doorstep.core.SyncException
import org.doorstep.core.VisitKind
import org.doorstep.core.VisitOutcome
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/**
 * Each error of the core arrives as its own Kotlin exception type with a message an app can
 * show, never naming a resident, and leaves the store as it was.
 */
class ErrorTest {
    private val dir = tempDir()
    private val office = Office(dir)
    private val phone = office.phone(dir, "li-na", office.liNa)
    private val home = office.household(phone, "12", "301")

    private fun visit(f: (NewVisit) -> NewVisit = { it }) =
        f(NewVisit(household = home.id, worker = office.liNa.id, kind = VisitKind.ROUTINE, outcome = VisitOutcome.ALL_WELL))

    private fun assertReadable(e: Exception) {
        val m = e.message ?: ""
        assertTrue(m.length in 10..400 && !m.contains("RustBuffer") && !m.contains("panicked"), "readable: $m")
        for (personal in listOf("Zhao Guilan", "13800000000", "410102194503120021")) {
            assertFalse(m.contains(personal), "no personal data in: $m")
        }
    }

    @Test
    fun `invalid input names the field`() {
        phone.addResident(
            NewResident(home.id, "Zhao Guilan", "13800000000", "410102194503120021", null, Relation.HEAD)
        )
        val e = assertThrows<DoorstepException.InvalidInput> {
            phone.recordVisit(visit { it.copy(location = GeoPoint(91.0, 113.6)) })
        }
        assertTrue(e.message!!.contains("location"), e.message)
        assertReadable(e)
        val long = assertThrows<DoorstepException.InvalidInput> { phone.recordVisit(visit { it.copy(notes = "x".repeat(4001)) }) }
        assertReadable(long)
        val name = assertThrows<DoorstepException.InvalidInput> {
            phone.addResident(NewResident(home.id, "", "13800000000", "410102194503120021", null, Relation.HEAD))
        }
        assertReadable(name)
        assertEquals(0, phone.visitHistory(home.id).size)
        assertEquals(1, phone.residents(home.id).size)
    }

    @Test
    fun `a record that is not on this phone is NotFound, a malformed id InvalidInput`() {
        val missing = assertThrows<DoorstepException.NotFound> { phone.household("01HZZZZZZZZZZZZZZZZZZZZZZZ") }
        assertReadable(missing)
        assertThrows<DoorstepException.InvalidInput> { phone.household("") }
        assertThrows<DoorstepException.NotFound> { phone.recordVisit(visit { it.copy(household = "01HZZZZZZZZZZZZZZZZZZZZZZZ") }) }
    }

    @Test
    fun `a photo file that cannot be read is File, and nothing is recorded`() {
        val e = assertThrows<DoorstepException.File> {
            phone.recordVisit(visit { it.copy(photos = listOf(PhotoFile(dir.resolve("gone.jpg").toString(), "image/jpeg", 10u, 10u))) })
        }
        assertReadable(e)
        assertEquals(0, phone.visitHistory(home.id).size)
    }

    @Test
    fun `damaged document bytes are CorruptData and change nothing`() {
        val before = phone.exportDocument("directory")
        val e = assertThrows<DoorstepException.CorruptData> { phone.importDocument("directory", byteArrayOf(1, 2, 3, 4)) }
        assertReadable(e)
        assertTrue(before.contentEquals(phone.exportDocument("directory")))
    }

    @Test
    fun `an encryption key is refused rather than ignored`() {
        val e = assertThrows<DoorstepException.InvalidInput> { Doorstep.open(dir.resolve("k.db").toString(), byteArrayOf(1, 2, 3)) }
        assertReadable(e)
    }

    @Test
    fun `a phone the directory does not know cannot start a peer sync`() = runBlocking {
        val stranger = Doorstep.open(dir.resolve("stranger.db").toString())
        val e = assertThrows<SyncException.NotEnrolled> { runBlocking { stranger.startPeerSync() } }
        assertReadable(e)
    }

    @Test
    fun `a malformed server address is InvalidInput at once, not Network after retrying`() = runBlocking {
        for (address in listOf("sync.example.org", "ftp://sync.example.org", "http://")) {
            val started = System.nanoTime()
            val e = assertThrows<SyncException.InvalidInput> { runBlocking { phone.syncWithServer(address, "token") } }
            assertReadable(e)
            assertTrue(e.message!!.contains("server address"), e.message)
            assertTrue(System.nanoTime() - started < 1_000_000_000L, "refused at once, no retries")
        }
        val e = assertThrows<SyncException.InvalidInput> { runBlocking { phone.enrol("htp:/nowhere", "code", "Li Na's phone") } }
        assertReadable(e)
    }

    @Test
    fun `a second sync while one runs is AlreadySyncing`() = runBlocking {
        // A server that takes the connection and never answers keeps the first sync running.
        java.net.ServerSocket(0).use { silent ->
            val url = "http://127.0.0.1:${silent.localPort}"
            val first = async(Dispatchers.Default) { runCatching { phone.syncWithServer(url, "token") } }
            withTimeout(10_000) { while (!phone.syncStatus().syncing) delay(10) }
            val e = assertThrows<SyncException.AlreadySyncing> { runBlocking { phone.syncWithServer(url, "token") } }
            assertReadable(e)
            assertFalse(first.isCompleted, "the first sync still runs")
        }
        Unit
    }

    @Test
    fun `no server at the address is Network, after retrying`() = runBlocking {
        val port = java.net.ServerSocket(0).use { it.localPort }
        val e = assertThrows<SyncException.Network> { runBlocking { phone.syncWithServer("http://127.0.0.1:$port", "token") } }
        assertReadable(e)
        assertEquals(e.message, phone.syncStatus().lastError)
    }
}
