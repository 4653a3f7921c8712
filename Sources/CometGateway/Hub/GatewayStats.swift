import Synchronization

/// Node-wide counters, read by `GET /healthz`.
public final class GatewayStats: Sendable {
    /// Open connections on the public listener.
    public let publicConnections = Atomic<Int>(0)
    /// Open connections on the publisher listener.
    public let publisherConnections = Atomic<Int>(0)
    /// Active subscriptions (held streams and polls).
    public let subscribers = Atomic<Int>(0)
    /// Messages published since start.
    public let messagesPublished = Atomic<Int>(0)
    /// Subscribers closed because they stopped reading and their outbound buffer overflowed.
    public let slowConsumerCloses = Atomic<Int>(0)
    /// Writes handed to the event loop's write queue because the socket was full or earlier bytes of its connection
    /// were still queued. Always 0 when direct writes are off.
    public let queuedWrites = Atomic<Int>(0)
    /// Requests refused with 503 because the connection limit was reached.
    public let connectionsRefused = Atomic<Int>(0)

    /// Times accepting paused because the process ran out of file descriptors (EMFILE/ENFILE) or memory.
    public let acceptBackoffs = Atomic<Int>(0)

    /// Creates zeroed counters.
    public init() {}
}
