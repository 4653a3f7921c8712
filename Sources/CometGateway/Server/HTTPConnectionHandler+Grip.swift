import CometCore
import Logging
import NIOCore

/// GRIP instructions from the application: the client's request is held as a subscription of the instruction's
/// channels (``GripStreamTransport``, ``GripResponseTransport``).
extension HTTPConnectionHandler {
    func proxyInstructed(_ instruction: GripInstruction, request: RequestHead, upstream: ProxyConfiguration.Upstream) {
        guard let context = self.context, case .proxying = self.exchange else { return }
        self.exchange = .none
        self.setClientReading(true)
        guard let mode = instruction.mode else {
            // An instruct document without a hold: its response, as it is.
            let bytes = GripResponses.render(instruction.response, keepAlive: self.machine.keepAlive,
                                             date: self.dateCache!.current, headOnly: request.method == .head)
            self.writer!.writeAndFlush(bytes)
            self.finish(self.machine.keepAlive, context: context)
            return
        }
        let transport: SubscriberTransport
        switch mode {
        case .stream:
            transport = .stream(GripStreamTransport(
                instruction: instruction, chunked: request.minorVersion >= 1, date: self.dateCache!.current,
                heartbeatInterval: self.gateway.configuration.transports.heartbeatInterval))
        case .response:
            transport = .gripResponse(GripResponseTransport(held: instruction.response, timeout: instruction.timeout,
                                                            headOnly: request.method == .head))
        }
        if mode == .stream, let link = instruction.nextLink {
            self.nextLink = GripNextLink(request: request, upstream: upstream, link: link, handler: self,
                                         timers: self.shard!.timers, loop: context.eventLoop)
        }
        self.hold(instruction, transport: transport, request: request, known: [:])
    }

    func proxyFetched(_ response: GripInstruction.Response) {}  // only a fetch (a next link) is answered so

    /// Holds the connection as `transport`, once the hold's cursor is known. `known` are positions of a stream's
    /// channels before a next link continued it.
    private func hold(_ instruction: GripInstruction, transport: SubscriberTransport, request: RequestHead,
                      known: [ChannelName: UInt64]) {
        guard let context = self.context, let mode = instruction.mode else { return }
        let channels = instruction.channels.map(\.name)
        self.exchange = .waiting(nil)
        self.gripCursor(instruction, known: known).hop(to: context.eventLoop).assumeIsolated().whenComplete { result in
            guard case .waiting = self.exchange, let context = self.context else { return }
            guard case .success(let cursor) = result else {
                self.exchange = .none
                self.finish(self.respond(HTTPResponse(error: GatewayError(.serviceUnavailable, "broker unavailable")),
                                         head: request), context: context)
                return
            }
            let subscription = Subscription(
                channels: channels, cursor: cursor, transport: transport, shard: self.shard!, outbound: self.outbound!,
                owner: self, hub: self.gateway.hub, keepAlive: mode == .response && self.machine.keepAlive,
                extraHeaders: [], maxOutboundBytes: self.limits.maxOutboundBytes)
            self.exchange = .holding(subscription)
            if mode == .stream { self.machine.holdStream() }
            self.gateway.logger.debug("grip hold", metadata: [
                "comet.channels": "\(channels.map(\.rawValue).joined(separator: ","))",
                "grip.mode": "\(mode)",
            ])
            subscription.start(broker: self.gateway.broker, pollTimeout: Double(instruction.timeout),
                               eventLoop: context.eventLoop, logger: self.gateway.logger)
            self.nextLink?.arm()
        }
    }

    // MARK: - Next links

    /// The next link's timeout passed: ask the application for it, with `Grip-Last: CHANNEL; last-id=ID` for each
    /// channel (the id of the last message the stream got, or the channel's position when it started).
    func followNextLink(_ next: GripNextLink) {
        guard let context = self.context, case .holding(let subscription) = self.exchange, !subscription.isFinished,
              next.exchange == nil
        else { return }
        let lastIDs = zip(subscription.channels, subscription.machine.positions).map { channel, position in
            ("Grip-Last", "\(channel.rawValue); last-id=\(position)")
        }
        let configuration = self.gateway.configuration.proxy
        let client = self.proxyClient(context)
        let exchange = ProxyExchange(
            head: next.request, upstream: next.upstream, configuration: configuration, client: client, keepAlive: true,
            limits: (self.limits.maxChannelsPerSubscription, self.limits.maxChannelNameLength),
            pool: self.shard!.upstreams(maxIdle: configuration.maxIdleConnections), timers: self.shard!.timers,
            writer: self.writer!, loop: context.eventLoop, owner: next,
            fetch: .init(uri: next.link.target(relativeTo: next.request.uri), extraHeaders: lastIDs))
        next.exchange = exchange
        exchange.start()
    }

    /// A next link answered with an instruction: a stream goes on with its body and its channels (positions kept
    /// for channels it held already); anything else ends the stream after its body.
    func continueStream(_ instruction: GripInstruction, next: GripNextLink) {
        guard case .holding(let old) = self.exchange, !old.isFinished,
              case .stream(let stream as GripStreamTransport) = old.transport
        else { return }
        guard instruction.mode == .stream else {
            self.endStream(after: instruction.response)
            return
        }
        var known: [ChannelName: UInt64] = [:]
        for (channel, position) in zip(old.channels, old.machine.positions) { known[channel] = position }
        old.connectionClosed()
        let transport = SubscriberTransport.stream(GripStreamTransport(
            instruction: instruction, chunked: stream.chunked, date: "",
            heartbeatInterval: self.gateway.configuration.transports.heartbeatInterval, continuation: true))
        if let link = instruction.nextLink {
            next.link = link
        } else {
            self.nextLink = nil
        }
        self.hold(instruction, transport: transport, request: next.request, known: known)
    }

    /// A next link answered with a plain response (or a hold that is not a stream): its body, then the end.
    func endStream(after response: GripInstruction.Response) {
        guard case .holding(let old) = self.exchange, !old.isFinished,
              case .stream(let stream as GripStreamTransport) = old.transport
        else { return }
        old.connectionClosed()
        self.nextLink?.cancel()
        self.nextLink = nil
        var final = GripEncoding.frame(response.body, chunked: stream.chunked)
        if stream.chunked { final.writeImmutableBuffer(IframeEncoding.lastChunk) }
        self.outbound?.end(with: final)
    }

    /// Where the hold starts: nil (live) when no channel names a `prev-id` or was held before (`known`); otherwise, per
    /// channel, the retained message the `prev-id` names (the publisher's EPCP `id`, or the gateway's own message id),
    /// so that the messages after it are sent at once, else the position it was held at, else the channel's newest
    /// message.
    private func gripCursor(_ instruction: GripInstruction, known: [ChannelName: UInt64]) -> EventLoopFuture<Cursor?> {
        let loop = self.context!.eventLoop
        guard instruction.channels.contains(where: { $0.prevID != nil || known[$0.name] != nil }) else {
            return loop.makeSucceededFuture(nil)
        }
        let channels = instruction.channels.map(\.name)
        let everything = Array(repeating: UInt64(0), count: channels.count)
        let broker = self.gateway.broker
        let replays = broker.replayImmediately(channels: channels, positions: everything).map(loop.makeSucceededFuture)
            ?? broker.replay(channels: channels, positions: everything, on: loop)
        return replays.map { replays in
            Cursor(positions: zip(instruction.channels, replays).map { channel, replay in
                guard let prevID = channel.prevID else { return known[channel.name] ?? replay.head }
                if let named = replay.messages.last(where: { $0.grip?.id == prevID }) { return named.id }
                if let id = UInt64(prevID), replay.messages.contains(where: { $0.id == id }) { return id }
                return replay.head
            })
        }
    }
}
