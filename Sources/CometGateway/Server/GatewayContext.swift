import CometCore
import Logging
import Synchronization

/// What every connection handler shares: configuration, hub, broker and counters.
package final class GatewayContext: Sendable {
    let configuration: GatewayConfiguration
    let hub: Hub
    let broker: any Broker
    let stats: GatewayStats
    /// The most open connections on the public listener.
    let maxConnections: Int
    let logger: Logger
    /// Set when a graceful shutdown begins.
    let draining = Atomic<Bool>(false)
    /// The channel-token checker, when `auth.channel_token_key` is set.
    let channelTokens: ChannelTokens?
    /// `GET /metrics`.
    let metrics: GatewayMetrics
    /// The Bayeux endpoint's sessions and relay.
    let bayeux: BayeuxService

    package init(configuration: GatewayConfiguration, hub: Hub, broker: any Broker, stats: GatewayStats, maxConnections: Int,
         logger: Logger, metrics: GatewayMetrics = GatewayMetrics()) {
        self.metrics = metrics
        self.configuration = configuration
        self.hub = hub
        self.broker = broker
        self.stats = stats
        self.maxConnections = maxConnections
        self.logger = logger
        self.channelTokens = configuration.auth.channelTokenKey.map { ChannelTokens(key: $0) }
        self.bayeux = BayeuxService(configuration: configuration)
    }
}
