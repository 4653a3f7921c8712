import CometCore
import NIOCore

/// Something with one deadline on its event loop's ``ConnectionTimers``: a connection's idle, request or poll timeout.
protocol DeadlineOwner: AnyObject {
    /// The deadline passed. Called on the event loop; the owner may set a new one from here.
    func deadlineReached()
}

/// The deadlines of one event loop's connections, served by a single NIO scheduled task at the earliest of them.
///
/// Setting and clearing a deadline touch only this loop's ``DeadlineQueue`` (no allocation, no search); NIO's task is
/// rescheduled only when a new deadline is earlier than every other. Confined to its event loop.
final class ConnectionTimers {
    private let loop: any EventLoop
    private var queue = DeadlineQueue<any DeadlineOwner>()
    private var nextID: UInt64 = 0
    /// The NIO task and the time it fires at.
    private var scheduled: (at: Int64, task: Scheduled<Void>)?
    private var firing = false

    init(loop: any EventLoop) {
        self.loop = loop
    }

    /// A new identifier for an owner's deadline.
    func makeID() -> UInt64 {
        self.nextID &+= 1
        return self.nextID
    }

    /// Sets `id`'s deadline to `uptimeNanoseconds` (replacing any).
    func set(_ id: UInt64, at uptimeNanoseconds: Int64, owner: any DeadlineOwner) {
        self.loop.preconditionInEventLoop()
        self.queue.set(id, at: uptimeNanoseconds, owner: owner)
        // While firing, the task is scheduled afterwards; a task that fires no later serves this deadline too.
        guard !self.firing else { return }
        if let scheduled = self.scheduled, scheduled.at <= uptimeNanoseconds { return }
        self.schedule(at: uptimeNanoseconds)
    }

    /// Clears `id`'s deadline, if any. NIO's task stays scheduled and finds nothing due for it.
    func clear(_ id: UInt64) {
        self.queue.remove(id)
    }

    /// The number of deadlines set (for tests and metrics).
    var count: Int { self.queue.count }

    private func schedule(at uptimeNanoseconds: Int64) {
        self.scheduled?.task.cancel()
        let deadline = NIODeadline.uptimeNanoseconds(UInt64(max(0, uptimeNanoseconds)))
        let task = self.loop.assumeIsolatedUnsafeUnchecked().scheduleTask(deadline: deadline) {
            self.scheduled = nil
            self.fire()
        }
        self.scheduled = (uptimeNanoseconds, task)
    }

    private func fire() {
        self.firing = true
        let now = Int64(self.loop.now.uptimeNanoseconds)
        while let due = self.queue.popDue(now: now) {
            due.owner.deadlineReached()
        }
        self.firing = false
        if let next = self.queue.earliest() {
            self.schedule(at: next)
        }
    }
}
