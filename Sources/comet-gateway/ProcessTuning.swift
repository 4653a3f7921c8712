#if canImport(Glibc)
import Glibc

@_silgen_name("mallopt")
private func glibcMallopt(_ parameter: CInt, _ value: CInt) -> CInt
#endif

/// Process-wide settings that keep connection setup cheap under a connect or reconnect storm. Applied once, at start.
enum ProcessTuning {
    /// The descriptor table is grown to this many slots at most ahead of time (2 MiB of kernel memory); a higher
    /// open-file limit still works, its table grows on demand beyond this.
    static let maxReservedDescriptors = 1 << 18

    static func apply() {
        self.tuneAllocator()
        self.reserveDescriptorTable()
    }

    /// Keeps freed heap memory mapped instead of returning it to the kernel at every dip: a reconnect storm frees and
    /// reallocates thousands of connections' worth of memory, and glibc's default (trim above 128 KiB of free top,
    /// grow by 128 KiB) turned that into an `mprotect` call for about every second connection.
    private static func tuneAllocator() {
        #if canImport(Glibc)
        // <malloc.h> is not in Swift's Glibc module: M_TRIM_THRESHOLD is -1, M_TOP_PAD -2 (glibc's values).
        _ = glibcMallopt(-2, 16 << 20)
        _ = glibcMallopt(-1, 64 << 20)
        #endif
    }

    /// Grows the kernel's descriptor table to the open-file limit now, once, instead of during a connect storm.
    ///
    /// Linux doubles a process's descriptor table when a new descriptor does not fit (64, 128, ... 32,768 slots for
    /// 20,000 connections), and in a process with more than one thread each doubling waits for an RCU grace period
    /// (`expand_files` → `synchronize_rcu`) inside `accept4`: measured here, the event loop slept 11 to 26 ms at each
    /// of them while connections queued, which made the connect p99 of a 10k storm at 5,000/s about 15 ms. Asking for
    /// one descriptor just below the limit grows the table in one step; the table never shrinks.
    private static func reserveDescriptorTable() {
        #if canImport(Glibc)
        var limit = rlimit()
        guard getrlimit(CInt(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
        let soft = UInt64(limit.rlim_cur)  // RLIM_INFINITY is the largest value: capped below
        let slots = Int(min(soft, UInt64(maxReservedDescriptors)))
        guard slots > 1024 else { return }
        let probe = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, CInt(slots - 1))
        if probe >= 0 { close(probe) }
        #endif
    }
}
