// The observer trait as AsyncStreams, the Swift twin of android/.../DoorstepFlows.kt.
import DoorstepCore

extension Doorstep {
    /// The sync badge: the current status first, then every change (a sync starting,
    /// advancing and ending; a local write adding a change the server has not seen). The
    /// observer is removed when the stream ends.
    public func syncStatusUpdates() -> AsyncStream<SyncStatus> {
        AsyncStream(bufferingPolicy: .unbounded) { continuation in
            let id = addObserver(observer: StreamObserver(status: { continuation.yield($0) }))
            // Read after registering, so no status newer than this one can have been missed.
            if let current = try? syncStatus() {
                continuation.yield(current)
            }
            continuation.onTermination = { [weak self] _ in _ = self?.removeObserver(id: id) }
        }
    }

    /// Documents that changed (`directory`, `grid/<id>`, `report/<id>`), from local writes and
    /// syncs: a screen showing one of them re-queries.
    public func changes() -> AsyncStream<Change> {
        AsyncStream(bufferingPolicy: .unbounded) { continuation in
            let id = addObserver(observer: StreamObserver(change: { continuation.yield($0) }))
            continuation.onTermination = { [weak self] _ in _ = self?.removeObserver(id: id) }
        }
    }
}

/// Forwards one kind of notification; called on the thread that made the change.
private final class StreamObserver: DoorstepObserver, @unchecked Sendable {
    private let status: ((SyncStatus) -> Void)?
    private let change: ((Change) -> Void)?

    init(status: ((SyncStatus) -> Void)? = nil, change: ((Change) -> Void)? = nil) {
        self.status = status
        self.change = change
    }

    func onChange(change: Change) { self.change?(change) }
    func onSyncStatus(status: SyncStatus) { self.status?(status) }
}
