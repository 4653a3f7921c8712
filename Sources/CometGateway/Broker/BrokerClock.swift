import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Wall-clock microseconds that never repeat or go back within a process: message ids and fresh cursor positions
/// are taken from it.
public final class BrokerClock: Sendable {
    private let last = Atomic<UInt64>(0)

    /// Creates a clock.
    public init() {}

    /// The current wall-clock time in microseconds since the Unix epoch.
    public static func wallMicroseconds() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return UInt64(spec.tv_sec) * 1_000_000 + UInt64(spec.tv_nsec) / 1000
    }

    /// A value greater than every value returned before, and at least the wall clock.
    public func next() -> UInt64 {
        let wall = BrokerClock.wallMicroseconds()
        var current = self.last.load(ordering: .relaxed)
        while true {
            let candidate = max(wall, current + 1)
            let (exchanged, original) = self.last.compareExchange(
                expected: current,
                desired: candidate,
                ordering: .relaxed
            )
            if exchanged { return candidate }
            current = original
        }
    }
}
