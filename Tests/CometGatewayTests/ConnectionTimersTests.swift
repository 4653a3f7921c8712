import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import CometGateway

/// One NIO task per event loop serves every connection's deadline (``ConnectionTimers``).
@Suite("Connection timers")
struct ConnectionTimersTests {
    /// Records when it fired; may set a new deadline from its callback.
    final class Owner: DeadlineOwner, @unchecked Sendable {  // confined to the loop
        let name: String
        let log: NIOLockedValueBox<[String]>
        var onFire: (() -> Void)?

        init(_ name: String, log: NIOLockedValueBox<[String]>) {
            self.name = name
            self.log = log
        }

        func deadlineReached() {
            self.log.withLockedValue { $0.append(self.name) }
            self.onFire?()
        }
    }

    @Test("Deadlines fire in order, a cleared one never, and one set while firing fires later")
    func firing() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let log = NIOLockedValueBox<[String]>([])
        try await loop.submit {
            let timers = ConnectionTimers(loop: loop)
            let now = Int64(loop.now.uptimeNanoseconds)
            let ms: Int64 = 1_000_000
            let a = Owner("a", log: log), b = Owner("b", log: log), c = Owner("c", log: log), d = Owner("d", log: log)
            let (ida, idb, idc, idd) = (timers.makeID(), timers.makeID(), timers.makeID(), timers.makeID())
            timers.set(idb, at: now + 60 * ms, owner: b)
            timers.set(ida, at: now + 30 * ms, owner: a)  // earlier than the scheduled task: reschedules it
            timers.set(idc, at: now + 45 * ms, owner: c)
            timers.clear(idc)
            // a sets d's deadline while the timers fire.
            a.onFire = { timers.set(idd, at: Int64(loop.now.uptimeNanoseconds) + 10 * ms, owner: d) }
            // Keep `timers` alive until everything fired.
            loop.assumeIsolated().scheduleTask(in: .seconds(2)) { _ = timers.count }
        }.get()
        for _ in 0..<300 where log.withLockedValue({ $0.count }) < 3 {
            try await Task.sleep(for: .milliseconds(10))
        }
        try await Task.sleep(for: .milliseconds(100))  // c must not come late
        #expect(log.withLockedValue { $0 } == ["a", "d", "b"])
    }
}
