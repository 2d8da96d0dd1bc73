package org.doorstep.tests

import org.doorstep.core.GeoPoint
import org.doorstep.core.NewVisit
import org.doorstep.core.VisitKind
import org.doorstep.core.VisitOutcome
import org.doorstep.core.rustRecordVisitUs
import org.junit.jupiter.api.Test

/**
 * The cost of the FFI: the same visits recorded into two identical stores, one through the
 * Kotlin bindings and one by the core directly (a test-only export), alternating rounds in the
 * same run. Prints figures; the target (Kotlin within 1.2x of Rust) is judged from them, not
 * asserted, as these machines are noisy.
 */
class FfiBenchTest {
    @Test
    fun `record_visit through Kotlin against the core directly`() {
        val dir = tempDir()
        val office = Office(dir)
        val kotlinPhone = office.phone(dir, "kotlin", office.liNa)
        val rustPath = dir.resolve("rust.db")
        val rustPhone = office.phone(dir, "rust", office.liNa)
        val home = office.household(kotlinPhone, "12", "301")
        val gridDoc = office.register
        rustPhone.importDocument(gridDoc, kotlinPhone.exportDocument(gridDoc))
        rustPhone.close()

        val visit = NewVisit(
            household = home.id, worker = office.liNa.id, location = GeoPoint(34.7466, 113.6253),
            kind = VisitKind.ROUTINE, outcome = VisitOutcome.ALL_WELL,
            notes = "Checked the smoke alarm and the gas hose; all well.",
        )
        val warmup = 50u
        val count = 1000u
        val kotlinRuns = mutableListOf<Double>()
        val rustRuns = mutableListOf<Double>()
        repeat(7) {
            repeat(warmup.toInt()) { kotlinPhone.recordVisit(visit) }
            val start = System.nanoTime()
            repeat(count.toInt()) { kotlinPhone.recordVisit(visit) }
            kotlinRuns += (System.nanoTime() - start) / 1_000.0 / count.toDouble()
            rustRuns += rustRecordVisitUs(rustPath.toString(), visit, warmup, count)
        }
        // The cost of crossing alone: a call that does nothing in the core.
        repeat(20_000) { kotlinPhone.removeObserver(0uL) }
        val callStart = System.nanoTime()
        repeat(20_000) { kotlinPhone.removeObserver(0uL) }
        val callUs = (System.nanoTime() - callStart) / 1_000.0 / 20_000

        val kotlinUs = kotlinRuns.sorted()[kotlinRuns.size / 2]
        val rustUs = rustRuns.sorted()[rustRuns.size / 2]
        println("kotlin_empty_call_us: %.1f us".format(callUs))
        println("kotlin_record_visit_us: %.1f us".format(kotlinUs))
        println("rust_record_visit_us: %.1f us".format(rustUs))
        println("kotlin_record_visit_ratio: %.2f (target <= 1.2; median of 7 alternating rounds of %d visits)".format(kotlinUs / rustUs, count.toInt()))
        kotlinPhone.close()
    }
}
