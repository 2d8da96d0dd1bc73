package org.doorstep.tests

import java.util.concurrent.CopyOnWriteArrayList
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.doorstep.android.syncStatusFlow
import org.doorstep.core.Doorstep
import org.doorstep.core.NewOrgUnit
import org.doorstep.core.NewVisit
import org.doorstep.core.PeerAnswer
import org.doorstep.core.PeerSync
import org.doorstep.core.RecordRef
import org.doorstep.core.SyncException
import org.doorstep.core.SyncStatus
import org.doorstep.core.UnitKind
import org.doorstep.core.VisitKind
import org.doorstep.core.VisitOutcome
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/** Two phones sync with each other (bytes in, bytes out) and through a real `doorstep serve`. */
class SyncTest {
    /** Carries messages between two phones until the one that started has nothing more to say. */
    private suspend fun meet(from: Doorstep, to: Doorstep): PeerSync {
        val session = from.startPeerSync()
        val answer: PeerAnswer = to.answerPeer()
        while (true) {
            val message = session.nextMessage() ?: break
            val reply = answer.respond(message)
            assertNull(reply.refused)
            session.receive(reply.message)
        }
        assertTrue(session.isDone())
        return session
    }

    private fun visit(household: String, worker: String, notes: String) =
        NewVisit(household = household, worker = worker, kind = VisitKind.ROUTINE, outcome = VisitOutcome.ALL_WELL, notes = notes)

    /**
     * Phones of `users` enrolled with `server` (their certificates come from it), then each synced
     * once, so that every phone's directory lists the others.
     */
    private suspend fun enrolled(server: SyncServer, dir: java.nio.file.Path, vararg users: Pair<String, org.doorstep.core.User>): List<Doorstep> {
        val phones = users.map { (name, user) -> server.enrolPhone(dir, name, user) }
        phones.forEach { (phone, token) -> phone.syncWithServer(server.url, token) }
        return phones.map { it.first }
    }

    @Test
    fun `two workers of a grid sync in the stairwell, both ways`() = runBlocking {
        val dir = tempDir()
        val office = Office(dir)
        SyncServer(dir).use { server ->
            server.import("directory", office.store.exportDocument("directory"))
            val (liNa, zhangWei) = enrolled(server, dir, "li-na" to office.liNa, "zhang-wei" to office.zhangWei)
            val home = office.household(liNa, "12", "301")
            val first = liNa.recordVisit(visit(home.id, office.liNa.id, "Li Na's visit"))

            val session = meet(liNa, zhangWei)
            assertTrue(session.progress().documents >= 1u)
            assertEquals(listOf(first.id), zhangWei.visitHistory(home.id).map { it.id })

            val second = zhangWei.recordVisit(visit(home.id, office.zhangWei.id, "Zhang Wei's visit"))
            meet(zhangWei, liNa)
            assertEquals(setOf(first.id, second.id), liNa.visitHistory(home.id).map { it.id }.toSet())

            // A phone without a certificate (its directory says it is Li Na's, nobody vouches for it)
            // cannot start a sync with another phone, and is told why.
            val stranger = Doorstep.open(dir.resolve("stranger.db").toString())
            stranger.importDocument("directory", office.store.exportDocument("directory"))
            stranger.addDevice(office.liNa.id, stranger.actorId(), null)
            val refused = assertThrows<SyncException.Refused> { runBlocking { stranger.startPeerSync() } }
            assertTrue(refused.message!!.contains("bad_certificate"), refused.message)
        }
    }

    @Test
    fun `a phone claiming to be Li Na's with a certificate of another deployment is refused`() = runBlocking {
        val dir = tempDir()
        val office = Office(dir)
        val elsewhere = dir.resolve("elsewhere").also { java.nio.file.Files.createDirectories(it) }
        SyncServer(dir).use { server ->
            SyncServer(elsewhere).use { other ->
                server.import("directory", office.store.exportDocument("directory"))
                other.import("directory", office.store.exportDocument("directory"))
                val (liNa, zhangWei) = enrolled(server, dir, "li-na" to office.liNa, "zhang-wei" to office.zhangWei)
                office.household(liNa, "12", "301")
                meet(liNa, zhangWei)
                // Enrolled as Li Na with another deployment's server: its certificate names her,
                // but no key Zhang Wei's phone pinned signed it.
                val (impostor) = enrolled(other, elsewhere, "impostor" to office.liNa)
                val session = zhangWei.startPeerSync()
                val answer = impostor.answerPeer()
                val proof = answer.respond(session.nextMessage()!!)
                assertNull(proof.refused)
                val e = assertThrows<SyncException.Refused> { runBlocking { session.receive(proof.message) } }
                assertTrue(e.message!!.contains("bad_certificate") && e.message!!.contains("unknown key"), e.message)
                assertThrows<SyncException> { runBlocking { session.nextMessage() } }
                assertTrue(impostor.households(org.doorstep.core.HouseholdFilter()).isEmpty(), "nothing of the grid reached it")
            }
        }
    }

    @Test
    fun `a phone with a newer directory refuses the grid alone and the other phone can show it`() = runBlocking {
        val dir = tempDir()
        val office = Office(dir)
        val otherGrid = office.store.addUnit(NewOrgUnit(UnitKind.GRID, office.community.id, "Grid 4"))
        SyncServer(dir).use { server ->
            server.import("directory", office.store.exportDocument("directory"))
            val (liNa, volunteer) = enrolled(server, dir, "li-na" to office.liNa, "volunteer" to office.volunteer)
            office.household(liNa, "12", "301")
            meet(liNa, volunteer)
            // Only the volunteer's phone learns that she moved to Grid 4.
            office.store.moveUser(office.volunteer.id, otherGrid.id)
            volunteer.importDocument("directory", office.store.exportDocument("directory"))

            // Li Na's phone offers the grid; the volunteer's refuses it and says so.
            val session = volunteer.startPeerSync()
            val answer = liNa.answerPeer()
            while (true) {
                val message = session.nextMessage() ?: break
                val reply = answer.respond(message)
                assertNull(reply.refused, "the message as a whole is taken")
                session.receive(reply.message)
            }
            assertTrue(session.isDone())
            val refused = answer.refusedDocuments().single()
            assertEquals(office.register to "forbidden_document", refused.document to refused.code)
        }
    }

    @Test
    fun `a worker moved to another grid keeps syncing and the badge names the grid the server refused`() = runBlocking {
        val dir = tempDir()
        val office = Office(dir)
        val otherGrid = office.store.addUnit(NewOrgUnit(UnitKind.GRID, office.community.id, "Grid 4"))
        SyncServer(dir).use { server ->
            server.import("directory", office.store.exportDocument("directory"))
            val (liNa, token) = server.enrolPhone(dir, "li-na", office.liNa)
            liNa.syncWithServer(server.url, token)
            val home = office.household(liNa, "12", "301")
            liNa.syncWithServer(server.url, token)
            // Offline, one more visit; meanwhile the office moves her to Grid 4.
            val late = liNa.recordVisit(visit(home.id, office.liNa.id, "Evening round"))
            office.store.moveUser(office.liNa.id, otherGrid.id)
            server.import("directory", office.store.exportDocument("directory"))

            val progress = liNa.syncWithServer(server.url, token)
            assertTrue(progress.done)
            val refused = progress.refused.single()
            assertEquals(office.monthVisits to "forbidden_document", refused.document to refused.code)
            val status = liNa.syncStatus()
            assertEquals(listOf(refused), status.refusedDocuments)
            assertNull(status.lastError)
            assertEquals(1uL, status.pendingChanges, "the visit stays on her phone, pending")
            assertFalse(liNa.reachedServer(RecordRef.Visit(late.id)))
            assertEquals(otherGrid.id, liNa.users().single { it.id == office.liNa.id }.unit)
            // The old grid's register (the server holds all of it) left her phone; the month with
            // her unsent visit stays.
            assertTrue(progress.documentsReleased >= 1uL, "$progress")
            assertTrue(liNa.households(org.doorstep.core.HouseholdFilter()).isEmpty())
            assertEquals(listOf(late.id), liNa.visitHistory(home.id).filter { it.id == late.id }.map { it.id })
        }
    }

    @Test
    fun `phones enrol with a doorstep serve started by the test and meet through it`() = runBlocking {
        val dir = tempDir()
        val office = Office(dir)
        SyncServer(dir).use { server ->
            server.import("directory", office.store.exportDocument("directory"))
            val (liNa, liNaToken) = server.enrolPhone(dir, "li-na", office.liNa)
            val code = server.enrolmentCode(office.zhangWei)
            val (zhangWei, zhangWeiToken) = server.enrolPhone(dir, "zhang-wei", office.zhangWei, code)

            // A used code enrols nobody else.
            val stranger = Doorstep.open(dir.resolve("stranger.db").toString())
            val used = assertThrows<SyncException.Refused> { runBlocking { stranger.enrol(server.url, code, "found it") } }
            assertTrue(used.message!!.contains("enrolment code"), used.message)
            assertNull(stranger.deviceCertificate(), "a refused enrolment leaves no certificate")

            // Enrolment left a certificate for Li Na's device, valid for the deployment's 14 days.
            val certificate = liNa.deviceCertificate()
            assertNotNull(certificate)
            assertEquals(office.liNa.id, certificate!!.userId)
            assertEquals(14L * 24 * 3600 * 1000, certificate.expiresAt - certificate.issuedAt)

            liNa.syncWithServer(server.url, liNaToken)
            assertEquals(office.liNa.id, liNa.deviceUser())
            val home = office.household(liNa, "12", "301")
            val v = liNa.recordVisit(visit(home.id, office.liNa.id, "Evening round"))
            assertFalse(liNa.reachedServer(RecordRef.Visit(v.id)))
            assertTrue(liNa.syncStatus().pendingChanges > 0u)

            // The sync badge through the Flow layer: syncing, then done with nothing pending.
            val statuses = CopyOnWriteArrayList<SyncStatus>()
            val collector = launch(Dispatchers.Default) { liNa.syncStatusFlow().collect { statuses += it } }
            withTimeout(10_000) { while (statuses.isEmpty()) kotlinx.coroutines.delay(10) }
            val progress = liNa.syncWithServer(server.url, liNaToken)
            assertTrue(progress.done)
            withTimeout(10_000) { while (statuses.last().syncing || statuses.last().lastSyncAt == null) kotlinx.coroutines.delay(10) }
            collector.cancel()
            assertTrue(statuses.first().pendingChanges > 0u, "first: ${statuses.first()}")
            assertTrue(statuses.any { it.syncing }, "saw the sync running: $statuses")
            assertEquals(0uL, statuses.last().pendingChanges)
            assertNull(statuses.last().lastError)
            assertTrue(liNa.reachedServer(RecordRef.Visit(v.id)))

            zhangWei.syncWithServer(server.url, zhangWeiToken)
            assertEquals(listOf(v.id), zhangWei.visitHistory(home.id).map { it.id })
            assertEquals("Evening round", zhangWei.visitHistory(home.id).single().notes)

            // A token the server never issued.
            val e = assertThrows<SyncException.Unauthorized> { runBlocking { zhangWei.syncWithServer(server.url, "not-a-token") } }
            assertTrue(e.message!!.contains("unauthorized"), e.message)
            assertEquals(e.message, zhangWei.syncStatus().lastError)

            // Zhang Wei's old phone is lost: the admin revokes it, and its next sync erases it.
            val lost = Doorstep.open(dir.resolve("lost.db").toString())
            val registration = lost.enrol(server.url, server.enrolmentCode(office.zhangWei), "Zhang Wei's old phone")
            lost.syncWithServer(server.url, registration.token)
            assertEquals(listOf(v.id), lost.visitHistory(home.id).map { it.id })
            server.revoke(registration.deviceId)
            val revoked = assertThrows<SyncException.Revoked> { runBlocking { lost.syncWithServer(server.url, registration.token) } }
            assertTrue(revoked.message!!.contains("revoked"), revoked.message)
            assertTrue(lost.visitHistory(home.id).isEmpty(), "the phone's data is erased")
            assertNull(lost.deviceCertificate())
            zhangWei.syncWithServer(server.url, zhangWeiToken)
            assertEquals(listOf(v.id), zhangWei.visitHistory(home.id).map { it.id })
        }
    }

    @Test
    fun `older visits are read from the server on demand and not kept on the phone`() = runBlocking<Unit> {
        val dir = tempDir()
        val office = Office(dir)
        SyncServer(dir).use { server ->
            server.import("directory", office.store.exportDocument("directory"))
            val (liNa, token) = server.enrolPhone(dir, "li-na", office.liNa)
            liNa.syncWithServer(server.url, token)
            val home = office.household(liNa, "12", "301")
            val v = liNa.recordVisit(visit(home.id, office.liNa.id, "Evening round"))
            liNa.syncWithServer(server.url, token)
            val month = java.time.YearMonth.now(java.time.ZoneOffset.UTC)

            // The volunteer of that micro-grid reads it from the server; her phone keeps nothing of it.
            val (volunteer, volunteerToken) = server.enrolPhone(dir, "volunteer", office.volunteer)
            volunteer.syncWithServer(server.url, volunteerToken)
            val fetched = volunteer.fetchVisits(server.url, volunteerToken, home.id, month.minusMonths(2).toString(), month.toString())
            assertEquals(listOf(v.id to "Evening round"), fetched.map { it.id to it.notes })
            assertTrue(liNa.syncStatus().pendingChanges == 0uL)

            // A month written wrongly, or a span the wrong way round, is refused before anything is sent.
            assertThrows<SyncException.InvalidInput> { runBlocking { liNa.fetchVisits(server.url, token, home.id, "2026/01", month.toString()) } }
            assertThrows<SyncException.InvalidInput> {
                runBlocking { liNa.fetchVisits(server.url, token, home.id, month.toString(), month.minusMonths(1).toString()) }
            }
        }
    }

    @Test
    fun `workers keep recording on four threads while the phone syncs, and nothing is lost`() = runBlocking {
        val dir = tempDir()
        val office = Office(dir)
        SyncServer(dir).use { server ->
            server.import("directory", office.store.exportDocument("directory"))
            val (liNa, liNaToken) = server.enrolPhone(dir, "li-na", office.liNa)
            val (zhangWei, zhangWeiToken) = server.enrolPhone(dir, "zhang-wei", office.zhangWei)
            liNa.syncWithServer(server.url, liNaToken)
            val homes = (1..4).map { office.household(liNa, "12", "30$it") }

            val writers = homes.map { home ->
                Thread {
                    repeat(100) { i -> liNa.recordVisit(visit(home.id, office.liNa.id, "visit $i")) }
                }.apply { start() }
            }
            // Sync again and again while the writers run (each sync locks the store only per step).
            do {
                liNa.syncWithServer(server.url, liNaToken)
            } while (writers.any { it.isAlive })
            writers.forEach { it.join() }
            liNa.syncWithServer(server.url, liNaToken)
            assertEquals(0uL, liNa.syncStatus().pendingChanges)

            zhangWei.syncWithServer(server.url, zhangWeiToken)
            for (home in homes) {
                assertEquals(100, zhangWei.visitHistory(home.id).size)
            }
        }
    }
}
