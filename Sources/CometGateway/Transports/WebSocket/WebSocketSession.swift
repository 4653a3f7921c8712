import CometCore
import Logging
import NIOCore

/// What a WebSocket session needs from its connection.
protocol WebSocketSessionOwner: AnyObject {
    /// The session ended the connection (its close frame is queued, the socket closes once it is written).
    func webSocketClosed()
}

/// What a WebSocket carries, above its frames: `/sub/`'s channel subscriptions (``WebSocketChannels``) or Bayeux
/// (``BayeuxSocket``). Confined to the connection's event loop.
protocol WebSocketApplication: AnyObject {
    /// A complete text message from the client.
    func received(_ text: String)
    /// A graceful shutdown began: say goodbye (the session then closes with 1001).
    func quiesce()
    /// The socket is closing or closed: stop writing, release what is held.
    func ended()
}

/// One WebSocket connection after the handshake: reads the client's frames, answers pings, pings an idle client and
/// closes one that does not answer, and hands complete text messages to its ``WebSocketApplication``. Everything is
/// written through the connection's ``ConnectionOutbound`` (so one bound holds for the socket). Confined to the
/// connection's event loop.
///
/// Violations of the protocol or of the limits close the socket with a close code: 1002 (protocol error), 1003
/// (binary message), 1007 (not UTF-8), 1008 (too many messages), 1009 (too large), 1001 (ping not answered,
/// shutdown); an application may close it too (1000).
final class WebSocketSession: HeartbeatReceiver {
    var heartbeatSlot = -1
    /// What the socket carries (set right after the session is made).
    var application: (any WebSocketApplication)?

    let gateway: GatewayContext
    let shard: LoopShard
    let outbound: ConnectionOutbound
    let eventLoop: any EventLoop
    private unowned let owner: any WebSocketSessionOwner
    /// The handshake's cookies and `Authorization`, for the application's authorization of later subscribes.
    var credentials = Authorizer.Credentials.none
    private var parser: WebSocketFrameParser
    /// Bytes read but not parsed yet (at most one incomplete frame).
    private var inbound: ByteBuffer?
    /// Nothing arrived from the client since the last ping.
    private var pingOutstanding = false
    /// Messages the client may still send now (a token bucket of `websocket.max_messages_per_second`).
    private var tokens: Double
    private var lastRefill: NIODeadline
    private(set) var closed = false

    init(gateway: GatewayContext, shard: LoopShard, outbound: ConnectionOutbound, eventLoop: any EventLoop,
         owner: any WebSocketSessionOwner) {
        self.gateway = gateway
        self.shard = shard
        self.outbound = outbound
        self.eventLoop = eventLoop
        self.owner = owner
        let limits = gateway.configuration.webSocket
        self.parser = WebSocketFrameParser(limits: .init(
            maxFrameBytes: limits.maxFrameBytes,
            maxMessageBytes: limits.maxMessageBytes,
            maxFragments: limits.maxFragments
        ))
        self.tokens = Double(limits.maxMessagesPerSecond)
        self.lastRefill = .now()
    }

    /// The `101` response that completes a handshake whose key hashes to `accept`.
    static func switchingProtocols(accept: String) -> ByteBuffer {
        var head = ByteBuffer()
        head.writeStaticString("HTTP/1.1 101 Switching Protocols\r\nServer: comet-gateway\r\nUpgrade: websocket\r\n")
        head.writeStaticString("Connection: Upgrade\r\nSec-WebSocket-Accept: ")
        head.writeString(accept)
        head.writeStaticString("\r\n\r\n")
        return head
    }

    /// Starts pinging the client every heartbeat interval.
    func start() {
        self.shard.addHeartbeat(self)
    }

    // MARK: - Reading

    /// Bytes from the client.
    func read(_ bytes: inout ByteBuffer) {
        guard !self.closed else { return }
        self.pingOutstanding = false
        if self.inbound == nil || self.inbound!.readableBytes == 0 {
            self.inbound = bytes
        } else {
            self.inbound!.writeBuffer(&bytes)
        }
        while !self.closed {
            let event: WebSocketFrameParser.Event?
            do {
                event = try self.parser.next(&self.inbound!)
            } catch let error as WebSocketFrameParser.ProtocolError {
                self.close(code: error.closeCode, reason: error.reason)
                return
            } catch {
                self.close(code: 1002, reason: "protocol error")
                return
            }
            guard let event else { break }
            self.handle(event)
        }
        if self.inbound?.readableBytes == 0 { self.inbound = nil }
    }

    private func handle(_ event: WebSocketFrameParser.Event) {
        switch event {
        case .pong:
            return
        case .close(let code, _):
            // Echo the client's code (RFC 6455, 5.5.1), then close.
            self.close(code: code ?? 1000, reason: "")
            return
        case .ping, .text, .binary:
            guard self.takeToken() else {
                self.close(code: 1008, reason: "too many messages")
                return
            }
        }
        switch event {
        case .ping(let payload):
            self.outbound.sendNow(WebSocketEncoding.frame(.pong, payload: payload))
        case .binary:
            self.close(code: 1003, reason: "binary messages are not supported")
        case .text(let text):
            self.application?.received(text)
        case .pong, .close:
            break
        }
    }

    private func takeToken() -> Bool {
        let rate = Double(self.gateway.configuration.webSocket.maxMessagesPerSecond)
        let now = NIODeadline.now()
        let elapsed = Double((now - self.lastRefill).nanoseconds) / 1e9
        self.lastRefill = now
        self.tokens = min(rate, self.tokens + elapsed * rate)
        guard self.tokens >= 1 else { return false }
        self.tokens -= 1
        return true
    }

    /// Sends a text message now (ahead of nothing queued by subscriptions: control traffic).
    func sendText(_ text: String) {
        self.outbound.sendNow(WebSocketEncoding.text(text))
    }

    // MARK: - Heartbeats, endings

    /// Pings every heartbeat interval; a client that sent nothing since the last ping is closed.
    func heartbeatTick() {
        guard !self.closed else { return }
        if self.pingOutstanding {
            self.close(code: 1001, reason: "ping not answered")
            return
        }
        self.pingOutstanding = true
        self.outbound.sendNow(WebSocketEncoding.ping)
    }

    /// Graceful shutdown: the application's goodbye, then close code 1001.
    func quiesce() {
        guard !self.closed else { return }
        self.application?.quiesce()
        self.close(code: 1001, reason: "shutdown")
    }

    /// Sends a close frame after what is queued and closes the connection once it is written.
    func close(code: UInt16, reason: String) {
        guard !self.closed else { return }
        self.end()
        self.outbound.end(with: WebSocketEncoding.close(code: code, reason: reason))
        self.owner.webSocketClosed()
    }

    /// The connection closed.
    func connectionClosed() {
        self.end()
    }

    private func end() {
        guard !self.closed else { return }
        self.closed = true
        self.application?.ended()
        self.application = nil  // the application refers back to the session
        if self.heartbeatSlot >= 0 {
            self.shard.removeHeartbeat(self)
        }
    }
}

@available(*, unavailable)
extension WebSocketSession: Sendable {}
