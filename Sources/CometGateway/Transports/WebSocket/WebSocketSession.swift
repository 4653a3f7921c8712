import CometCore
import Logging
import NIOCore

/// What a WebSocket session needs from its connection.
protocol WebSocketSessionOwner: AnyObject {
    /// The session ended the connection (its close frame is queued, the socket closes once it is written).
    func webSocketClosed()
}

/// One WebSocket connection after the handshake: reads the client's frames, answers pings, pings an idle client and
/// closes one that does not answer, and holds one ``Subscription`` per channel, all writing through the connection's
/// ``ConnectionOutbound`` (so one bound holds for the socket). Confined to the connection's event loop.
///
/// Client text frames are control messages (``WebSocketCommand``), answered with a control message. Errors in a
/// control message are answered with `{"type":"error",…}` and leave the socket open; violations of the protocol or of
/// the limits close it with a close code: 1002 (protocol error), 1003 (binary message), 1007 (not UTF-8), 1008 (too
/// many messages), 1009 (too large), 1001 (ping not answered, shutdown), 1000 (every channel closed).
final class WebSocketSession: SubscriptionOwner, HeartbeatReceiver {
    var heartbeatSlot = -1

    private let gateway: GatewayContext
    private let shard: LoopShard
    private let outbound: ConnectionOutbound
    private let eventLoop: any EventLoop
    private unowned let owner: any WebSocketSessionOwner
    /// The handshake's cookies and `Authorization`, for the application's authorization of later subscribes.
    var credentials = Authorizer.Credentials.none
    private var parser: WebSocketFrameParser
    /// Bytes read but not parsed yet (at most one incomplete frame).
    private var inbound: ByteBuffer?
    private var subscriptions: [ChannelName: Subscription] = [:]
    /// Nothing arrived from the client since the last ping.
    private var pingOutstanding = false
    /// Messages the client may still send now (a token bucket of `websocket.max_messages_per_second`).
    private var tokens: Double
    private var lastRefill: NIODeadline
    private var closed = false
    private var draining = false

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

    private var maxChannels: Int { self.gateway.configuration.limits.maxChannelsPerSubscription }

    /// Starts the subscriptions the URL named, each channel from its position in `cursor` (the cursor of the
    /// channels in order, as every transport uses).
    func start(channels: [ChannelName], cursor: Cursor?) {
        self.shard.addHeartbeat(self)
        let positions = cursor.flatMap { $0.positions.count == channels.count ? $0.positions : nil }
        for (index, channel) in channels.enumerated() {
            self.subscribe(channel, cursor: positions.map { Cursor(positions: [$0[index]]) })
        }
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
            self.command(text)
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

    private func command(_ text: String) {
        let command: WebSocketCommand
        do {
            command = try WebSocketCommand(parsing: text,
                                           maxChannelNameLength: self.gateway.configuration.limits.maxChannelNameLength)
        } catch let error as GatewayError {
            self.sendError(error, channel: nil)
            return
        } catch {
            return
        }
        switch command {
        case .subscribe(let channel, let cursor, let token):
            if let tokens = self.gateway.channelTokens, let refusal = tokens.refusal(token, channels: [channel]) {
                self.sendError(GatewayError(.forbidden, refusal), channel: channel)
                return
            }
            guard let authorizer = self.shard.authorizer(self.gateway.configuration) else {
                self.subscribe(channel, cursor: cursor)
                return
            }
            authorizer.authorize([channel], credentials: self.credentials).hop(to: self.eventLoop).assumeIsolated()
                .whenSuccess { verdict in
                    guard !self.closed else { return }
                    switch verdict {
                    case .admit: self.subscribe(channel, cursor: cursor)
                    case .refuse(let error): self.sendError(error, channel: channel)
                    }
                }
        case .unsubscribe(let channel):
            guard let subscription = self.subscriptions.removeValue(forKey: channel) else {
                self.sendError(GatewayError(.notFound, "not subscribed"), channel: channel)
                return
            }
            subscription.connectionClosed()
            self.sendControl("{\"type\":\"unsubscribed\",\"channel\":\"\(channel.rawValue)\"}")
        }
    }

    private func subscribe(_ channel: ChannelName, cursor: Cursor?) {
        guard self.subscriptions[channel] == nil else {
            self.sendError(GatewayError(.init(409, "Conflict"), "already subscribed"), channel: channel)
            return
        }
        guard self.subscriptions.count < self.maxChannels else {
            self.sendError(GatewayError(.badRequest, "too many channels (at most \(self.maxChannels))"), channel: channel)
            return
        }
        let subscription = Subscription(
            channels: [channel],
            cursor: cursor,
            transport: .stream(WebSocketChannelTransport(channel: channel)),
            shard: self.shard,
            outbound: self.outbound,
            owner: self,
            hub: self.gateway.hub,
            keepAlive: false,
            extraHeaders: [],
            maxOutboundBytes: self.gateway.configuration.limits.maxOutboundBytes
        )
        self.subscriptions[channel] = subscription
        subscription.start(broker: self.gateway.broker, pollTimeout: 0, eventLoop: self.eventLoop,
                           logger: self.gateway.logger)
    }

    private func sendControl(_ json: String) {
        self.outbound.sendNow(WebSocketEncoding.text(json))
    }

    private func sendError(_ error: GatewayError, channel: ChannelName?) {
        var json = "{\"type\":\"error\",\"status\":\(error.code.status),\"reason\":"
        var reason = ByteBuffer()
        JSONEncoding.writeString(error.reason, into: &reason)
        json += String(buffer: reason)
        if let channel { json += ",\"channel\":\"\(channel.rawValue)\"" }
        self.sendControl(json + "}")
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

    /// Graceful shutdown: each channel's cursor, then close code 1001.
    func quiesce() {
        guard !self.closed else { return }
        self.draining = true
        for subscription in self.subscriptions.values {
            subscription.quiesce(drainRetry: 0)
        }
        self.close(code: 1001, reason: "shutdown")
    }

    /// Sends a close frame after what is queued and closes the connection once it is written.
    private func close(code: UInt16, reason: String) {
        guard !self.closed else { return }
        self.endSubscriptions()
        self.outbound.end(with: WebSocketEncoding.close(code: code, reason: reason))
        self.owner.webSocketClosed()
    }

    /// The connection closed.
    func connectionClosed() {
        self.endSubscriptions()
    }

    private func endSubscriptions() {
        self.closed = true
        let subscriptions = self.subscriptions.values
        self.subscriptions.removeAll()
        for subscription in subscriptions {
            subscription.connectionClosed()
        }
        if self.heartbeatSlot >= 0 {
            self.shard.removeHeartbeat(self)
        }
    }

    // MARK: - SubscriptionOwner

    func streamEnded(_ subscription: Subscription, final: ByteBuffer) {
        self.outbound.sendNow(final)
        guard let channel = subscription.channels.first, self.subscriptions[channel] === subscription else { return }
        self.subscriptions[channel] = nil
        if self.subscriptions.isEmpty && !self.closed && !self.draining {
            self.close(code: 1000, reason: "channel closed")
        }
    }

    func subscriptionFailed(_ subscription: Subscription, error: GatewayError) {
        guard let channel = subscription.channels.first, self.subscriptions[channel] === subscription else { return }
        self.subscriptions[channel] = nil
        self.sendError(error, channel: channel)
    }

    func subscriptionFinishedResponse(keepAlive: Bool) {}  // WebSocket subscriptions are streams, never polls
    func holdPoll(for seconds: Double) {}
}

@available(*, unavailable)
extension WebSocketSession: Sendable {}
