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

    /// Message deliveries made on this node (one per subscriber a message was handed to).
    public let deliveries = Atomic<Int>(0)

    /// Active subscriptions by transport, in ``SubscriberKind`` order.
    private let sse = Atomic<Int>(0), stream = Atomic<Int>(0), iframe = Atomic<Int>(0), webSocket = Atomic<Int>(0)
    private let gripStream = Atomic<Int>(0), poll = Atomic<Int>(0), jsonp = Atomic<Int>(0), gripResponse = Atomic<Int>(0)
    private let bayeux = Atomic<Int>(0)
    /// Bayeux clients (sessions) on this node.
    public let bayeuxSessions = Atomic<Int>(0)

    /// Counts a subscription of `kind` coming (`delta` 1) or going (-1).
    func subscribers(_ kind: SubscriberKind, add delta: Int) {
        switch kind {
        case .sse: self.sse.add(delta, ordering: .relaxed)
        case .stream: self.stream.add(delta, ordering: .relaxed)
        case .iframe: self.iframe.add(delta, ordering: .relaxed)
        case .webSocket: self.webSocket.add(delta, ordering: .relaxed)
        case .gripStream: self.gripStream.add(delta, ordering: .relaxed)
        case .poll: self.poll.add(delta, ordering: .relaxed)
        case .jsonp: self.jsonp.add(delta, ordering: .relaxed)
        case .gripResponse: self.gripResponse.add(delta, ordering: .relaxed)
        case .bayeux: self.bayeux.add(delta, ordering: .relaxed)
        }
    }

    /// Active subscriptions of `kind`.
    public func subscribers(_ kind: SubscriberKind) -> Int {
        switch kind {
        case .sse: self.sse.load(ordering: .relaxed)
        case .stream: self.stream.load(ordering: .relaxed)
        case .iframe: self.iframe.load(ordering: .relaxed)
        case .webSocket: self.webSocket.load(ordering: .relaxed)
        case .gripStream: self.gripStream.load(ordering: .relaxed)
        case .poll: self.poll.load(ordering: .relaxed)
        case .jsonp: self.jsonp.load(ordering: .relaxed)
        case .gripResponse: self.gripResponse.load(ordering: .relaxed)
        case .bayeux: self.bayeux.load(ordering: .relaxed)
        }
    }

    /// Creates zeroed counters.
    public init() {}
}

/// What kind of subscription a subscriber is, for metrics (`transport` label).
public enum SubscriberKind: String, Sendable, CaseIterable {
    case sse
    case stream
    case iframe
    case webSocket = "websocket"
    case gripStream = "grip_stream"
    case poll
    case jsonp
    case gripResponse = "grip_response"
    /// A Bayeux client's subscription (one per channel or wildcard it subscribed to).
    case bayeux
}
