import CometCore
import NIOCore

/// `/sub/`'s protocol on a WebSocket: one ``Subscription`` per channel, each writing the shared message frame through
/// the connection's outbound queue. Client text messages are control messages (``WebSocketCommand``), answered with
/// a control message; an error in one is answered with `{"type":"error",…}` and leaves the socket open; when every
/// channel is closed by its publisher, the socket closes (1000). Confined to the connection's event loop.
final class WebSocketChannels: WebSocketApplication, SubscriptionOwner {
    private unowned let session: WebSocketSession
    private var subscriptions: [ChannelName: Subscription] = [:]
    private var closed = false
    private var draining = false

    init(session: WebSocketSession) {
        self.session = session
    }

    private var gateway: GatewayContext { self.session.gateway }
    private var shard: LoopShard { self.session.shard }
    private var eventLoop: any EventLoop { self.session.eventLoop }
    private var maxChannels: Int { self.gateway.configuration.limits.maxChannelsPerSubscription }

    /// Starts the subscriptions the URL named, each channel from its position in `cursor` (the cursor of the
    /// channels in order, as every transport uses).
    func start(channels: [ChannelName], cursor: Cursor?) {
        let positions = cursor.flatMap { $0.positions.count == channels.count ? $0.positions : nil }
        for (index, channel) in channels.enumerated() {
            self.subscribe(channel, cursor: positions.map { Cursor(positions: [$0[index]]) })
        }
    }

    func received(_ text: String) {
        self.command(text)
    }

    /// Graceful shutdown: each channel's cursor.
    func quiesce() {
        self.draining = true
        for subscription in self.subscriptions.values {
            subscription.quiesce(drainRetry: 0)
        }
    }

    func ended() {
        self.closed = true
        let subscriptions = self.subscriptions.values
        self.subscriptions.removeAll()
        for subscription in subscriptions {
            subscription.connectionClosed()
        }
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
            authorizer.authorize([channel], credentials: self.session.credentials).hop(to: self.eventLoop).assumeIsolated()
                .whenSuccess { verdict in
                    guard !self.closed else { return }
                    switch verdict {
                    case .admit: self.subscribe(channel, cursor: cursor)
                    case .refuse(let error): self.sendError(error, channel: channel)
                    }
                }
        case .publish(let channel, let data):
            self.publish(data, to: channel)
        case .unsubscribe(let channel):
            guard let subscription = self.subscriptions.removeValue(forKey: channel) else {
                self.sendError(GatewayError(.notFound, "not subscribed"), channel: channel)
                return
            }
            subscription.connectionClosed()
            self.sendControl("{\"type\":\"unsubscribed\",\"channel\":\"\(channel.rawValue)\"}")
        }
    }

    /// A client's publish: relayed to the application (`bayeux.relay_url`) with the handshake's cookies and
    /// `Authorization`; on a 2xx published as JSON to every transport, answered `{"type":"published",…}`; otherwise an
    /// error message with the application's status (or 503/504 when it did not answer).
    private func publish(_ data: JSONValue, to channel: ChannelName) {
        guard let relay = self.gateway.bayeux.relay else {
            self.sendError(GatewayError(.forbidden, "publishing is not enabled (bayeux.relay_url)"), channel: channel)
            return
        }
        let body = PublishRelay.body(channel: channel.rawValue, gatewayChannel: channel, data: data, clientID: nil,
                                     source: "websocket")
        let maxIdle = self.gateway.configuration.proxy.maxIdleConnections
        relay.send(body, credentials: self.session.credentials, shard: self.shard, maxIdle: maxIdle)
            .assumeIsolated().whenSuccess { verdict in
                guard !self.closed else { return }
                switch verdict {
                case .refused(let status):
                    self.sendError(GatewayError(.init(status, "Refused"), "refused by the application"), channel: channel)
                case .unavailable(let status, let reason):
                    self.sendError(GatewayError(.init(status, "Unavailable"), reason), channel: channel)
                case .accepted:
                    let draft = MessageDraft(channel: channel, contentType: "application/json", data: data.jsonText)
                    self.gateway.broker.publish([draft], on: self.eventLoop).hop(to: self.eventLoop).assumeIsolated()
                        .whenComplete { result in
                            guard !self.closed else { return }
                            switch result {
                            case .success(let receipts):
                                let id = receipts.first.map { String($0.id) } ?? ""
                                self.sendControl("{\"type\":\"published\",\"channel\":\"\(channel.rawValue)\",\"id\":\"\(id)\"}")
                            case .failure:
                                self.sendError(GatewayError(.serviceUnavailable, "broker unavailable"), channel: channel)
                            }
                        }
                }
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
            outbound: self.session.outbound,
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
        self.session.sendText(json)
    }

    private func sendError(_ error: GatewayError, channel: ChannelName?) {
        var json = "{\"type\":\"error\",\"status\":\(error.code.status),\"reason\":"
        var reason = ByteBuffer()
        JSONEncoding.writeString(error.reason, into: &reason)
        json += String(buffer: reason)
        if let channel { json += ",\"channel\":\"\(channel.rawValue)\"" }
        self.sendControl(json + "}")
    }

    // MARK: - SubscriptionOwner

    func streamEnded(_ subscription: Subscription, final: ByteBuffer) {
        self.session.outbound.sendNow(final)
        guard let channel = subscription.channels.first, self.subscriptions[channel] === subscription else { return }
        self.subscriptions[channel] = nil
        if self.subscriptions.isEmpty && !self.closed && !self.draining {
            self.session.close(code: 1000, reason: "channel closed")
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
extension WebSocketChannels: Sendable {}
