#if canImport(Glibc)
import Glibc

@_silgen_name("mallopt")
private func glibcMallopt(_ parameter: CInt, _ value: CInt) -> CInt
#endif

/// Process-wide settings that keep connection setup cheap under a connect or reconnect storm. Applied once, at start.
/// (The descriptor table is grown by the gateway itself when it raises its open-file limit: see `OpenFiles`.)
enum ProcessTuning {
    static func apply() {
        self.tuneAllocator()
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
}
