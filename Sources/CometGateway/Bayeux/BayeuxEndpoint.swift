import CometCore
import NIOCore
import Synchronization

/// Answers a Bayeux request (a batch of messages from one HTTP request or one WebSocket text message): handshakes
/// make sessions here; every other message is carried out by its client's ``BayeuxSession`` on that session's loop.
struct BayeuxEndpoint {
    let gateway: GatewayContext
    var service: BayeuxService { self.gateway.bayeux }

    /// The reply to a message of an unknown (or forgotten) client: `402::Unknown client`, advice to handshake again.
    static func unknownClient(_ message: BayeuxMessage) -> BayeuxReply {
        var reply = BayeuxReply.failure(message.channel, id: message.id, error: "402::Unknown client",
                                        advice: .object(["reconnect": .string("handshake"), "interval": .number(0)]))
        reply.subscription = message.subscription
        return reply
    }

    /// Answers `messages`, received on `loop` over `transport`, into `reply`: their replies and events as one JSON
    /// array, handed over at once or later (from the session's loop, or `loop` for handshakes). A held connect tells
    /// `reply` which session holds it, so that the request's connection can release it if it closes first.
    func answer(_ messages: [BayeuxMessage], transport: BayeuxTransport, credentials: @autoclosure () -> Authorizer.Credentials,
                token: String?, on loop: any EventLoop, reply: HoldClaim) {
        var replies: [ByteBuffer] = []
        // A request made only of connects needs no credentials (they serve publishes and subscribes).
        let needsCredentials = messages.contains { $0.channel != "/meta/connect" }
        let credentials = needsCredentials ? credentials() : nil
        var rest = messages  // without handshakes (most requests have none: no copy then)
        if needsCredentials, messages.contains(where: { $0.channel == "/meta/handshake" }) {
            rest.removeAll(keepingCapacity: true)
            for message in messages {
                if message.channel == "/meta/handshake" {
                    replies.append(self.handshake(message, transport: transport, credentials: credentials ?? .none, on: loop))
                } else {
                    rest.append(message)
                }
            }
        }
        guard let first = rest.first else { return reply.deliver(Self.array(replies)) }
        guard rest.allSatisfy({ $0.clientID == first.clientID }) else {
            return reply.deliver(Self.array(replies + rest.map { message in
                BayeuxReply.failure(message.channel, id: message.id, error: "400::one clientId per request").bytes
            }))
        }
        guard let clientID = first.clientID, let handle = self.service.sessions.lookup(clientID) else {
            return reply.deliver(Self.array(replies + rest.map { Self.unknownClient($0).bytes }))
        }
        // On the session's loop (the common case: it shook hands on this connection's loop) without a task.
        if handle.loop.inEventLoop {
            Self.run(rest, before: replies, handle: handle, transport: transport, credentials: credentials, token: token,
                     reply: reply)
        } else {
            let batch = rest
            let before = replies
            handle.loop.execute {
                Self.run(batch, before: before, handle: handle, transport: transport, credentials: credentials,
                         token: token, reply: reply)
            }
        }
    }

    /// Carries out a batch on its session's loop (call on it).
    private static func run(_ batch: [BayeuxMessage], before: [ByteBuffer], handle: BayeuxSessions.Handle,
                            transport: BayeuxTransport, credentials: Authorizer.Credentials?, token: String?,
                            reply: HoldClaim) {
        let session = handle.session.value
        if let credentials { session.credentials = credentials }
        session.handle(batch, before: before, transport: transport, token: token, reply: reply)
    }

    private func handshake(_ message: BayeuxMessage, transport: BayeuxTransport, credentials: Authorizer.Credentials,
                           on loop: any EventLoop) -> ByteBuffer {
        guard let offered = message.supportedConnectionTypes, !offered.isEmpty else {
            return self.refusedHandshake(message, "400::supportedConnectionTypes must be a list of connection types")
        }
        guard offered.contains(where: { BayeuxTransport(rawValue: $0) != nil }) else {
            return self.refusedHandshake(message, "400::no connection type in common")
        }
        var ackEnabled = false
        switch message.ext?["ack"] {
        case .bool(true)?: ackEnabled = true
        case .object(let fields)?: ackEnabled = fields["enabled"] == .bool(true)
        default: break
        }
        let clientID = BayeuxSessions.makeClientID()
        let shard = self.gateway.hub.shard(for: loop)
        let session = BayeuxSession(clientID: clientID, service: self.service, gateway: self.gateway, shard: shard,
                                    ackEnabled: ackEnabled, credentials: credentials)
        guard !self.gateway.draining.load(ordering: .relaxed),
              self.service.sessions.insert(clientID, .init(loop: loop, session: NIOLoopBound(session, eventLoop: loop)))
        else {
            session.end(reconnect: nil)
            var reply = BayeuxReply.failure("/meta/handshake", id: message.id, error: "503::too many clients")
            reply.advice = .object(["reconnect": .string("handshake"), "interval": .number(1000)])
            return reply.bytes
        }
        var reply = BayeuxReply(channel: "/meta/handshake", successful: true, id: message.id)
        reply.clientID = clientID
        reply.version = "1.0"
        reply.supportedConnectionTypes = BayeuxTransport.names
        reply.encodedAdvice = self.service.encodedAdvice
        if ackEnabled { reply.ext = .object(["ack": .bool(true)]) }
        return reply.bytes
    }

    private func refusedHandshake(_ message: BayeuxMessage, _ error: String) -> ByteBuffer {
        var reply = BayeuxReply.failure("/meta/handshake", id: message.id, error: error,
                                        advice: .object(["reconnect": .string("none")]))
        reply.supportedConnectionTypes = BayeuxTransport.names
        reply.version = "1.0"
        return reply.bytes
    }

    /// `[reply,…]`: the JSON array of a response or a WebSocket message.
    static func array(_ items: [ByteBuffer]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(items.reduce(2) { $0 + $1.readableBytes + 1 })
        buffer.writeStaticString("[")
        for (index, item) in items.enumerated() {
            if index > 0 { buffer.writeStaticString(",") }
            buffer.writeImmutableBuffer(item)
        }
        buffer.writeStaticString("]")
        return buffer
    }
}
