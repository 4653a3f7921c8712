import Foundation

/// Runs `work`, a blocking call such as a libcurl request that waits for the gateway, on a thread of its own and
/// returns its result.
///
/// Swift's cooperative pool has one thread per core (two on the test machines). A blocking call made in a child task
/// (`async let`, `Task.detached`) that waits for something the same test does next, such as a held poll waiting for
/// a publish, holds one of them; when parallel tests hold all of them, the test that would publish cannot run and the
/// held call waits for its timeout. On its own thread, the call never holds up a task.
public func onOwnThread<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        let thread = Thread {
            continuation.resume(returning: work())
        }
        thread.start()
    }
}
