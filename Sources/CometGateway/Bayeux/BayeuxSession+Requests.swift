import CometCore
import NIOCore

/// A client's requests other than the handshake: connect, disconnect, subscribe, unsubscribe, publish.
extension BayeuxSession {
    /// Carries out a batch (all for this client), in order, with a connect last, and hands `reply` the replies
    /// after `before` (and, for a connect, the events it takes) as one JSON array: at once, after the application
    /// answered, or when a held connect is answered. `token` is the channel token the request carried (`?token=`,
    /// `X-Comet-Token`) for subscribes that do not carry their own (`ext.token`). A held connect tells `reply` its
    /// serial, so that the request's connection can release it if it closes first.
    func handle(_ messages: [BayeuxMessage], before: [ByteBuffer], transport: BayeuxTransport, token: String?,
                reply: HoldClaim) {
        // The common request: one connect.
        if messages.count == 1, let connect = messages.first, connect.channel == "/meta/connect" {
            var none: [BayeuxMessage] = []
            self.step(&none, replies: before, connect: connect, transport: transport, token: token, reply: reply)
            return
        }
        var others = messages.filter { $0.channel != "/meta/connect" }
        let connects = messages.filter { $0.channel == "/meta/connect" }
        var replies = before
        for extra in connects.dropLast() {
            replies.append(BayeuxReply.failure("/meta/connect", id: extra.id, clientID: self.clientID,
                                               error: "400::one /meta/connect per request").bytes)
        }
        others.reverse()  // popped from the end, in order
        self.step(&others, replies: replies, connect: connects.last, transport: transport, token: token, reply: reply)
    }

    private func step(_ pending: inout [BayeuxMessage], replies: [ByteBuffer], connect: BayeuxMessage?,
                      transport: BayeuxTransport, token: String?, reply: HoldClaim) {
        var replies = replies
        while let message = pending.popLast() {
            guard !self.ended else {
                replies.append(BayeuxEndpoint.unknownClient(message).bytes)
                continue
            }
            switch self.answer(message, token: token) {
            case .now(let list):
                replies += list
            case .later(let future):
                var rest = pending
                future.hop(to: self.loop).assumeIsolated().whenComplete { result in
                    let list = (try? result.get()) ?? [self.failure(message, "503::unavailable")]
                    self.step(&rest, replies: replies + list, connect: connect, transport: transport, token: token,
                              reply: reply)
                }
                return
            }
        }
        guard let connect else { return reply.deliver(BayeuxEndpoint.array(replies)) }
        guard !self.ended else {
            return reply.deliver(BayeuxEndpoint.array(replies + [BayeuxEndpoint.unknownClient(connect).bytes]))
        }
        if let type = connect.connectionType, BayeuxTransport(rawValue: type) == nil {
            return reply.deliver(BayeuxEndpoint.array(replies + [BayeuxReply.failure(
                "/meta/connect", id: connect.id, clientID: self.clientID,
                error: "400:\(Self.argument(type)):unsupported connection type").bytes]))
        }
        self.connect(connect, before: replies, reply: reply)
    }

    private enum Answer {
        case now([ByteBuffer])
        case later(EventLoopFuture<[ByteBuffer]>)
    }

    private func answer(_ message: BayeuxMessage, token: String?) -> Answer {
        switch message.channel {
        case "/meta/disconnect":
            self.end(reconnect: "none")
            var reply = BayeuxReply(channel: "/meta/disconnect", successful: true, id: message.id)
            reply.clientID = self.clientID
            return .now([reply.bytes])
        case "/meta/subscribe":
            return self.subscribe(message, token: token)
        case "/meta/unsubscribe":
            return .now([self.unsubscribe(message)])
        case "/meta/handshake":
            return .now([self.failure(message, "400::handshake with a clientId")])
        default:
            if message.channel.hasPrefix("/meta/") {
                return .now([self.failure(message, "400:\(Self.argument(message.channel)):unknown meta channel")])
            }
            return self.publish(message)
        }
    }

    func failure(_ message: BayeuxMessage, _ error: String) -> ByteBuffer {
        var reply = BayeuxReply.failure(message.channel, id: message.id, clientID: self.clientID, error: error)
        reply.subscription = message.subscription
        return reply.bytes
    }

    /// A client's text, made safe and short for an error's `args` (no `:` or control characters, at most 64).
    static func argument(_ text: String) -> String {
        String(text.unicodeScalars.prefix(64).map { $0 == ":" || $0.value < 0x20 ? "_" : Character($0) })
    }

    // MARK: - Subscribe, unsubscribe

    /// What a subscription name means to the hub.
    private enum Target {
        case channel(ChannelName)
        case pattern(ChannelPattern)
        /// `/service/**`: accepted, delivers nothing (services answer their caller directly).
        case service
    }

    private enum Resolved {
        case target(Target)
        case refused(String)
    }

    private func target(_ name: String) -> Resolved {
        let maxLength = self.gateway.configuration.limits.maxChannelNameLength
        if name == "/meta" || name.hasPrefix("/meta/") {
            return .refused("403:\(Self.argument(name)):meta channels cannot be subscribed to")
        }
        if name.hasPrefix("/service/") {
            // `/service/x`, `/service/*`, `/service/**`: accepted, deliver nothing.
            let base = name.hasSuffix("/**") ? String(name.dropLast(3)) : name.hasSuffix("/*") ? String(name.dropLast(2)) : name
            guard base == "/service" || BayeuxChannel(base, maxLength: maxLength) != nil else {
                return .refused("400:\(Self.argument(name)):invalid channel")
            }
            return .target(.service)
        }
        guard let channel = BayeuxChannel(name, maxLength: maxLength) else {
            return .refused("400:\(Self.argument(name)):invalid channel")
        }
        switch channel.kind {
        case .meta:
            return .refused("403:\(Self.argument(name)):meta channels cannot be subscribed to")
        case .service:
            return .target(.service)
        case .broadcast:
            guard let gateway = channel.gatewayChannel(maxLength: maxLength) else {
                return .refused("400:\(Self.argument(name)):invalid channel")
            }
            return .target(.channel(gateway))
        case .wildcard, .deepWildcard:
            let deep = channel.kind == .deepWildcard
            if channel.segments.isEmpty { return .target(.pattern(ChannelPattern(prefix: nil, deep: deep))) }
            guard let prefix = BayeuxChannel("/" + channel.segments.joined(separator: "/"), maxLength: maxLength)?
                .gatewayChannel(maxLength: maxLength)
            else { return .refused("400:\(Self.argument(name)):invalid channel") }
            return .target(.pattern(ChannelPattern(prefix: prefix, deep: deep)))
        }
    }

    private func subscribe(_ message: BayeuxMessage, token: String?) -> Answer {
        guard !message.subscriptions.isEmpty else { return .now([self.failure(message, "400::no subscription")]) }
        var targets: [(String, Target)] = []
        for name in message.subscriptions {
            switch self.target(name) {
            case .target(let target): targets.append((name, target))
            case .refused(let error): return .now([self.failure(message, error)])
            }
        }
        let limit = self.service.configuration.maxSubscriptions
        let adding = Set(targets.map(\.0)).subtracting(self.subscriptions.keys).count
        guard self.subscriptions.count + adding <= limit else {
            return .now([self.failure(message, "403::too many subscriptions (at most \(limit))")])
        }
        // Authorization names gateway channels and patterns (`chat.room1`, `chat.*`).
        let names = targets.compactMap { _, target -> String? in
            switch target {
            case .channel(let channel): channel.rawValue
            case .pattern(let pattern): pattern.description
            case .service: nil
            }
        }
        if let tokens = self.gateway.channelTokens, !names.isEmpty {
            var ownToken: String? = nil
            if case .string(let text)? = message.ext?["token"] { ownToken = text }
            if let refusal = tokens.refusal(ownToken ?? token, names: names) {
                return .now([self.failure(message, "403::\(refusal)")])
            }
        }
        guard !names.isEmpty, let authorizer = self.shard.authorizer(self.gateway.configuration) else {
            return .now([self.admit(targets, message)])
        }
        return .later(authorizer.authorize(names: names, credentials: self.credentials).hop(to: self.loop)
            .assumeIsolated().map { verdict in
                switch verdict {
                case .admit:
                    return self.ended ? [BayeuxEndpoint.unknownClient(message).bytes] : [self.admit(targets, message)]
                case .refuse(let error):
                    return [self.failure(message, "\(error.code.status)::\(Self.argument(error.reason))")]
                }
            }.nonisolated())
    }

    private func admit(_ targets: [(String, Target)], _ message: BayeuxMessage) -> ByteBuffer {
        // Checked again: other subscribes of the client may have been admitted while this one waited.
        let limit = self.service.configuration.maxSubscriptions
        let adding = Set(targets.map(\.0)).subtracting(self.subscriptions.keys).count
        guard self.subscriptions.count + adding <= limit else {
            return self.failure(message, "403::too many subscriptions (at most \(limit))")
        }
        for (name, target) in targets where self.subscriptions[name] == nil {
            let subscriber: BayeuxSubscriber
            switch target {
            case .channel(let channel): subscriber = BayeuxSubscriber(channel: channel, session: self)
            case .pattern(let pattern): subscriber = BayeuxSubscriber(pattern: pattern, session: self)
            case .service: continue
            }
            self.subscriptions[name] = subscriber
            self.register(subscriber)
        }
        var reply = BayeuxReply(channel: "/meta/subscribe", successful: true, id: message.id)
        reply.clientID = self.clientID
        reply.subscription = message.subscription
        return reply.bytes
    }

    private func unsubscribe(_ message: BayeuxMessage) -> ByteBuffer {
        guard !message.subscriptions.isEmpty else { return self.failure(message, "400::no subscription") }
        for name in message.subscriptions {
            if let subscriber = self.subscriptions.removeValue(forKey: name) { self.unregister(subscriber) }
        }
        var reply = BayeuxReply(channel: "/meta/unsubscribe", successful: true, id: message.id)
        reply.clientID = self.clientID
        reply.subscription = message.subscription
        return reply.bytes
    }

    // MARK: - Publish

    /// A client's publish: relayed to the application (`bayeux.relay_url`); on a 2xx, a broadcast channel's message is
    /// published (every transport's subscribers get it) and a service channel's answer, if the application sent a
    /// JSON body, is delivered to this client alone.
    private func publish(_ message: BayeuxMessage) -> Answer {
        let maxLength = self.gateway.configuration.limits.maxChannelNameLength
        guard let channel = BayeuxChannel(message.channel, maxLength: maxLength) else {
            return .now([self.failure(message, "400:\(Self.argument(message.channel)):invalid channel")])
        }
        let gatewayChannel = channel.gatewayChannel(maxLength: maxLength)
        switch channel.kind {
        case .meta, .wildcard, .deepWildcard:
            return .now([self.failure(message, "400:\(Self.argument(message.channel)):cannot publish to this channel")])
        case .service, .broadcast:
            break
        }
        guard let data = message.data else { return .now([self.failure(message, "400::no data")]) }
        guard let relay = self.service.relay else {
            return .now([self.failure(message, "403::publishing is not enabled (bayeux.relay_url)")])
        }
        let body = PublishRelay.body(channel: message.channel, gatewayChannel: gatewayChannel, data: data,
                                     clientID: self.clientID, source: "bayeux")
        let maxIdle = self.gateway.configuration.proxy.maxIdleConnections
        let verdict = relay.send(body, credentials: self.credentials, shard: self.shard, maxIdle: maxIdle)
        return .later(verdict.assumeIsolated().flatMap { verdict -> EventLoopFuture<[ByteBuffer]> in
            var reply = BayeuxReply(channel: message.channel, successful: true, id: message.id)
            reply.clientID = self.clientID
            switch verdict {
            case .refused(let status):
                return self.loop.makeSucceededFuture([self.failure(message, "\(status)::refused by the application")])
            case .unavailable(let status, let reason):
                return self.loop.makeSucceededFuture([self.failure(message, "\(status)::\(reason)")])
            case .accepted(let answer):
                guard let gatewayChannel else {
                    // A service: the application's JSON answer goes to this client alone.
                    if answer.readableBytes > 0, answer.withUnsafeReadableBytes({ JSONSyntax.isValid($0) }) {
                        var event = ByteBuffer()
                        event.writeStaticString("{\"channel\":")
                        JSONEncoding.writeString(message.channel, into: &event)
                        event.writeStaticString(",\"data\":")
                        event.writeImmutableBuffer(answer)
                        event.writeStaticString("}")
                        return self.loop.makeSucceededFuture([reply.bytes, event])
                    }
                    return self.loop.makeSucceededFuture([reply.bytes])
                }
                let draft = MessageDraft(channel: gatewayChannel, contentType: "application/json", data: data.jsonText)
                return self.gateway.broker.publish([draft], on: self.loop).hop(to: self.loop).assumeIsolated()
                    .map { _ in [reply.bytes] }
                    .recover { _ in [self.failure(message, "503::broker unavailable")] }.nonisolated()
            }
        }.nonisolated())
    }
}
