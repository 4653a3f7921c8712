import CometCore
import Logging
import NIOCore

/// GRIP instructions from the application: the client's request is held as a subscription of the instruction's
/// channels (``GripStreamTransport``, ``GripResponseTransport``).
extension HTTPConnectionHandler {
    func proxyInstructed(_ instruction: GripInstruction, request: RequestHead) {
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
        let channels = instruction.channels.map(\.name)
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
        self.exchange = .waiting
        self.gripCursor(instruction).hop(to: context.eventLoop).assumeIsolated().whenComplete { result in
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
        }
    }

    /// Where the hold starts: nil (live) when no channel names a `prev-id`; otherwise, per channel, the retained
    /// message the `prev-id` names (the publisher's EPCP `id`, or the gateway's own message id), so that the
    /// messages after it are sent at once, or the channel's newest message when `prev-id` names none.
    private func gripCursor(_ instruction: GripInstruction) -> EventLoopFuture<Cursor?> {
        let loop = self.context!.eventLoop
        guard instruction.channels.contains(where: { $0.prevID != nil }) else { return loop.makeSucceededFuture(nil) }
        let channels = instruction.channels.map(\.name)
        let everything = Array(repeating: UInt64(0), count: channels.count)
        let broker = self.gateway.broker
        let replays = broker.replayImmediately(channels: channels, positions: everything).map(loop.makeSucceededFuture)
            ?? broker.replay(channels: channels, positions: everything, on: loop)
        return replays.map { replays in
            Cursor(positions: zip(instruction.channels, replays).map { channel, replay in
                guard let prevID = channel.prevID else { return replay.head }
                if let named = replay.messages.last(where: { $0.grip?.id == prevID }) { return named.id }
                if let id = UInt64(prevID), replay.messages.contains(where: { $0.id == id }) { return id }
                return replay.head
            })
        }
    }
}
