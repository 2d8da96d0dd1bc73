// The small idiomatic layer over the generated bindings: the observer trait as Kotlin Flows.
// Shared by the Android library (android/) and the JVM test suite (tests/kotlin), which
// tests it against the real library.
package org.doorstep.android

import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.callbackFlow
import kotlinx.coroutines.flow.distinctUntilChanged
import kotlinx.coroutines.withContext
import org.doorstep.core.Change
import org.doorstep.core.Doorstep
import org.doorstep.core.DoorstepObserver
import org.doorstep.core.SyncStatus

/**
 * The sync badge as a Flow: the current status first, then every change (a sync starting,
 * advancing and ending; a local write adding a change the server has not seen). Nothing is
 * dropped; apply `conflate()` where only the latest matters. The observer is removed when the
 * collector stops.
 */
fun Doorstep.syncStatusFlow(): Flow<SyncStatus> = callbackFlow {
    val id = addObserver(object : DoorstepObserver {
        override fun onChange(change: Change) {}
        override fun onSyncStatus(status: SyncStatus) {
            trySend(status)
        }
    })
    // Read after registering, so no status newer than this one can have been missed.
    send(withContext(Dispatchers.IO) { syncStatus() })
    awaitClose { removeObserver(id) }
}.buffer(Channel.UNLIMITED).distinctUntilChanged()

/**
 * Documents that changed (`directory`, `register/<unit>`, `visits/<unit>/<YYYY-MM>`, `report/<id>`), from local writes and from
 * syncs: a screen showing one of them re-queries.
 */
fun Doorstep.changes(): Flow<Change> = callbackFlow {
    val id = addObserver(object : DoorstepObserver {
        override fun onChange(change: Change) {
            trySend(change)
        }
        override fun onSyncStatus(status: SyncStatus) {}
    })
    awaitClose { removeObserver(id) }
}.buffer(Channel.UNLIMITED)
