package org.doorstep.tests

import java.net.ServerSocket
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.nio.file.Files
import java.nio.file.Path
import java.time.Duration
import org.doorstep.core.Address
import org.doorstep.core.CareTag
import org.doorstep.core.Doorstep
import org.doorstep.core.NewHousehold
import org.doorstep.core.NewOrgUnit
import org.doorstep.core.NewUser
import org.doorstep.core.Role
import org.doorstep.core.UnitKind
import org.doorstep.core.User
import org.doorstep.core.defaultCategories

const val HOUR = 3_600_000L
const val FIRE_SAFETY = "Housing and fire safety"

/** A fresh folder for a test's stores, removed when the test JVM exits (the stores are open till then). */
fun tempDir(): Path = Files.createTempDirectory("doorstep-kt").also { dir ->
    Runtime.getRuntime().addShutdownHook(Thread { dir.toFile().deleteRecursively() })
}

/** A small photo file on disk, as a phone's camera would leave it. */
fun photoFile(dir: Path, name: String, seed: Int): Path {
    val bytes = ByteArray(4096) { ((it * 31 + seed) and 0xff).toByte() }
    return Files.write(dir.resolve(name), bytes)
}

/**
 * The office's set-up of one community in Jinshui District: the hierarchy down to a grid and a
 * micro-grid, and the people who work it (names from the field guide's examples).
 */
class Office(dir: Path) {
    val store: Doorstep = Doorstep.open(dir.resolve("office.db").toString())
    val district = store.addUnit(NewOrgUnit(UnitKind.DISTRICT, null, "Jinshui District"))
    val street = store.addUnit(NewOrgUnit(UnitKind.STREET, district.id, "Fengchan Road Street"))
    val community = store.addUnit(NewOrgUnit(UnitKind.COMMUNITY, street.id, "Dongfeng Community"))
    val grid = store.addUnit(NewOrgUnit(UnitKind.GRID, community.id, "Grid 3"))
    val microGrid = store.addUnit(NewOrgUnit(UnitKind.MICRO_GRID, grid.id, "Building 12"))

    val liNa: User = store.addUser(NewUser("Grid worker Li Na", Role.GRID_WORKER, grid.id))
    val zhangWei: User = store.addUser(NewUser("Grid worker Zhang Wei", Role.GRID_WORKER, grid.id))
    val volunteer: User = store.addUser(NewUser("Volunteer Wang Fang", Role.MICRO_GRID_VOLUNTEER, microGrid.id))
    val handler: User = store.addUser(NewUser("Handler Sun Hao", Role.DEPARTMENT_HANDLER, district.id, FIRE_SAFETY))
    val supervisor: User = store.addUser(NewUser("Supervisor Gao Min", Role.SUPERVISOR, street.id))

    init {
        defaultCategories().forEach { store.setCategory(it) }
    }

    fun household(store: Doorstep, building: String, room: String, vararg tags: CareTag) =
        store.addHousehold(
            NewHousehold(grid = grid.id, microGrid = microGrid.id, address = Address(building, "2", room),
                careTags = tags.toList())
        )

    private val phones = mutableListOf<Doorstep>()

    /**
     * A phone of `user` set up by the office without a server: its device goes into the
     * directory, and every phone set up so far gets the new directory.
     */
    fun phone(dir: Path, name: String, user: User): Doorstep {
        val phone = Doorstep.open(dir.resolve("$name.db").toString())
        store.addDevice(user.id, phone.actorId(), phone.devicePublicKey())
        phones += phone
        val directory = store.exportDocument("directory")
        phones.forEach { it.importDocument("directory", directory) }
        return phone
    }

    /** The micro-grid's register: the document its households and residents are kept in. */
    val register: String get() = "register/${microGrid.id}"

    /** The micro-grid's visits of this month (UTC): the document a visit recorded now goes to. */
    val monthVisits: String get() = "visits/${microGrid.id}/${java.time.YearMonth.now(java.time.ZoneOffset.UTC)}"
}

/** A `doorstep serve` process on 127.0.0.1, started and stopped by a test. */
class SyncServer(dir: Path) : AutoCloseable {
    val adminToken = "office-admin-token-for-tests"
    val url: String
    private val process: Process
    private val http: HttpClient = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build()

    init {
        val port = ServerSocket(0).use { it.localPort }
        url = "http://127.0.0.1:$port"
        val bin = System.getProperty("doorstep.bin") ?: error("doorstep.bin is not set (see pom.xml)")
        val builder = ProcessBuilder(bin, "serve")
        builder.environment().apply {
            put("DOORSTEP_LISTEN", "127.0.0.1:$port")
            put("DOORSTEP_DATABASE", dir.resolve("server.db").toString())
            put("DOORSTEP_ADMIN_TOKEN", adminToken)
        }
        builder.redirectErrorStream(true).redirectOutput(dir.resolve("server.log").toFile())
        process = builder.start()
        val deadline = System.nanoTime() + 30_000_000_000L
        while (true) {
            val up = runCatching { get("/healthz").statusCode() == 200 }.getOrDefault(false)
            if (up) break
            check(process.isAlive) { "doorstep serve exited: " + Files.readString(dir.resolve("server.log")) }
            check(System.nanoTime() < deadline) { "doorstep serve did not answer /healthz within 30 s" }
            Thread.sleep(50)
        }
    }

    /** The office puts a whole document on the server. */
    fun import(doc: String, bytes: ByteArray) {
        val req = HttpRequest.newBuilder(URI("$url/v1/admin/documents?doc=$doc"))
            .header("authorization", "Bearer $adminToken")
            .POST(HttpRequest.BodyPublishers.ofByteArray(bytes)).build()
        val resp = http.send(req, HttpResponse.BodyHandlers.ofString())
        check(resp.statusCode() == 200) { "import of $doc: ${resp.statusCode()} ${resp.body()}" }
    }

    /** The admin revokes a device (a lost phone). */
    fun revoke(deviceId: String) {
        val req = HttpRequest.newBuilder(URI("$url/v1/admin/devices/$deviceId"))
            .header("authorization", "Bearer $adminToken").DELETE().build()
        val resp = http.send(req, HttpResponse.BodyHandlers.ofString())
        check(resp.statusCode() == 204) { "revoke: ${resp.statusCode()} ${resp.body()}" }
    }

    /** A one-time enrolment code for a device of `user`. */
    fun enrolmentCode(user: User): String {
        val body = """{"user_id": "${user.id}", "valid_hours": 24}"""
        val req = HttpRequest.newBuilder(URI("$url/v1/admin/enrolments"))
            .header("authorization", "Bearer $adminToken").header("content-type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(body)).build()
        val resp = http.send(req, HttpResponse.BodyHandlers.ofString())
        check(resp.statusCode() in 200..299) { "enrolment: ${resp.statusCode()} ${resp.body()}" }
        return Regex("\"code\"\\s*:\\s*\"([^\"]+)\"").find(resp.body())?.groupValues?.get(1)
            ?: error("no code in ${resp.body()}")
    }

    /** A fresh phone of `user` enrolled with `code` (a new one by default), and its token. */
    suspend fun enrolPhone(dir: Path, name: String, user: User, code: String = enrolmentCode(user)): Pair<Doorstep, String> {
        val phone = Doorstep.open(dir.resolve("$name.db").toString())
        return phone to phone.enrol(url, code, "$name's phone").token
    }

    private fun get(path: String): HttpResponse<String> =
        http.send(HttpRequest.newBuilder(URI("$url$path")).GET().build(), HttpResponse.BodyHandlers.ofString())

    override fun close() {
        process.destroy()
        if (!process.waitFor(10, java.util.concurrent.TimeUnit.SECONDS)) process.destroyForcibly()
    }
}
