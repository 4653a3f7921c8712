import CometCore
import Logging
import NIOCore

extension Subscription {
    /// A subscription for a `GET /sub/…` request on an HTTP connection.
    convenience init(request: SubscribeRequest, transport: SubscriberTransport, keepAlive: Bool,
                     extraHeaders: [(String, String)], shard: LoopShard, outbound: ConnectionOutbound,
                     owner: any SubscriptionOwner, gateway: GatewayContext) {
        self.init(channels: request.channels, cursor: request.cursor, transport: transport, shard: shard,
                  outbound: outbound, owner: owner, hub: gateway.hub, keepAlive: keepAlive, extraHeaders: extraHeaders,
                  maxOutboundBytes: gateway.configuration.limits.maxOutboundBytes)
    }

    /// ``start(broker:pollTimeout:eventLoop:logger:)`` for a request, logged at debug level.
    func start(gateway: GatewayContext, request: SubscribeRequest, eventLoop: any EventLoop) {
        gateway.logger.debug(
            "subscribe",
            metadata: [
                "comet.channels": "\(request.channels.map(\.rawValue).joined(separator: ","))",
                "comet.transport": "\(request.transport.rawValue)",
                "comet.cursor": "\(request.cursor?.description ?? "none")",
            ]
        )
        self.start(broker: gateway.broker, pollTimeout: request.pollTimeout, eventLoop: eventLoop, logger: gateway.logger)
    }

    /// Starts a subscription: registers it for live messages, then asks the broker for its replay, in that order, so
    /// that nothing published in between is missed.
    ///
    /// A poll whose cursor is behind, on a connection that is not kept alive, is answered from history at once without
    /// registering (a registration it would undo right away).
    func start(broker: any Broker, pollTimeout: Double, eventLoop: any EventLoop, logger: Logger) {
        if case .poll = self.transport, !self.keepAlive, let positions = self.requestedPositions,
           let replays = broker.replayImmediately(channels: self.channels, positions: positions),
           replays.contains(where: { $0.gap || !$0.messages.isEmpty }) {
            self.replayed(replays, pollTimeout: pollTimeout)
            return
        }
        self.register()
        if let replays = broker.replayImmediately(channels: self.channels, positions: self.requestedPositions) {
            self.replayed(replays, pollTimeout: pollTimeout)
            return
        }
        // The broker completes on any loop: hop to this subscription's loop before touching it.
        broker.replay(channels: self.channels, positions: self.requestedPositions, on: eventLoop)
            .hop(to: eventLoop)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let replays):
                    self.replayed(replays, pollTimeout: pollTimeout)
                case .failure(let error):
                    logger.error("replay failed", metadata: ["error": "\(error)"])
                    self.replayFailed()
                }
            }
    }
}
