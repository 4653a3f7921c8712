import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The process's open-file limit and descriptor table, set up once when the gateway starts.
enum OpenFiles {
    /// The descriptor table is grown to this many slots at most ahead of time (2 MiB of kernel memory on 64-bit); a
    /// higher limit still works, the table grows on demand beyond it.
    static let maxReservedSlots = 1 << 18

    /// Raises the soft open-file limit to the hard one and grows the descriptor table to it; returns the soft limit
    /// (nil when it cannot be read).
    static func raiseLimit() -> Int? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        let files = Int(clamping: limit.rlim_cur)
        Self.reserveTable(slots: min(files, Self.maxReservedSlots))
        return files
    }

    /// Grows the kernel's descriptor table to `slots` now, once, instead of during a connect storm.
    ///
    /// Linux doubles a process's descriptor table when a new descriptor does not fit (64, 128, ... 32,768 slots for
    /// 20,000 connections), and in a process with more than one thread each doubling waits for an RCU grace period
    /// (`expand_files` → `synchronize_rcu`) inside `accept4`: measured here, the event loop slept 11 to 26 ms at each
    /// of them while connections queued, which made the connect p99 of a 10k storm at 5,000/s about 19 ms. Asking for
    /// one descriptor just below the limit grows the table in one step; the table never shrinks.
    static func reserveTable(slots: Int) {
        guard slots > 1024 else { return }
        let probe = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, CInt(slots - 1))
        if probe >= 0 { close(probe) }
    }
}
