import CometCore
import NIOConcurrencyHelpers
import NIOCore
import Prometheus
import Synchronization

/// The node's metrics in the Prometheus text format (`GET /metrics` on the publisher listener), with
/// swift-prometheus. Gauges are read from the node's counters when scraped; counters advance by what the node's
/// totals grew since the last scrape; the broker's round trips go into a histogram as they happen.
package final class GatewayMetrics: Sendable {
    private let registry = PrometheusCollectorRegistry()
    private let scrape = NIOLockedValueBox<[String: Int]>([:])
    private let connections: [(listener: String, gauge: Gauge)]
    private let subscribers: [(kind: SubscriberKind, gauge: Gauge)]
    private let channels: Gauge
    private let bayeuxSessions: Gauge
    private let draining: Gauge
    private let brokerConnected: Gauge
    private let totals: [(name: String, counter: Counter)]
    /// Redis round trips of publishes and replays.
    let brokerLatency: DurationHistogram

    package init() {
        let registry = self.registry
        func name(_ metric: String, unit: String = "", _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "comet", metricName: metric, unitName: unit, helpText: help)
        }
        self.connections = ["public", "publisher"].map { listener in
            (listener, registry.makeGauge(descriptor: name("connections", "Open connections, by listener"),
                                          labels: [("listener", listener)]))
        }
        self.subscribers = SubscriberKind.allCases.map { kind in
            (kind, registry.makeGauge(descriptor: name("subscribers", "Held subscriptions, by transport"),
                                      labels: [("transport", kind.rawValue)]))
        }
        self.channels = registry.makeGauge(descriptor: name("channels", "Channels with subscribers on this node"))
        self.bayeuxSessions = registry.makeGauge(descriptor: name("bayeux_sessions", "Bayeux clients (sessions) on this node"))
        self.draining = registry.makeGauge(descriptor: name("draining", "1 while the node drains for shutdown"))
        self.brokerConnected = registry.makeGauge(
            descriptor: name("broker_connected", "1 while the broker can serve (Redis: connected)"))
        self.totals = [
            ("comet_messages_published_total", "Messages published through this node"),
            ("comet_messages_delivered_total", "Message deliveries to subscribers of this node"),
            ("comet_slow_consumer_closes_total", "Subscribers closed because their outbound buffer overflowed"),
            ("comet_connections_refused_total", "Requests refused because the connection limit was reached"),
            ("comet_accept_backoffs_total", "Times accepting paused for lack of file descriptors or memory"),
            ("comet_broker_reconnects_total", "Connections to the broker made again after a loss"),
            ("comet_broker_backfills_total", "Channels filled in from broker history after a reconnect"),
        ].map { full, help in
            let metric = String(full.dropFirst("comet_".count).dropLast("_total".count))
            return (full, registry.makeCounter(descriptor: name(metric, unit: "total", help)))
        }
        self.brokerLatency = registry.makeDurationHistogram(
            descriptor: name("broker_request_duration", unit: "seconds", "Round trips to the broker (Redis publishes and replays)"),
            buckets: [.microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
                      .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
                      .milliseconds(500), .seconds(1), .seconds(5)])
    }

    /// The text exposition, with every value read now.
    func render(stats: GatewayStats, hub: Hub, broker: any Broker, draining: Bool) -> ByteBuffer {
        self.connections[0].gauge.set(to: Double(stats.publicConnections.load(ordering: .relaxed)))
        self.connections[1].gauge.set(to: Double(stats.publisherConnections.load(ordering: .relaxed)))
        for (kind, gauge) in self.subscribers { gauge.set(to: Double(stats.subscribers(kind))) }
        self.channels.set(to: Double(hub.channelCount))
        self.bayeuxSessions.set(to: Double(stats.bayeuxSessions.load(ordering: .relaxed)))
        self.draining.set(to: draining ? 1 : 0)
        self.brokerConnected.set(to: broker.isConnected ? 1 : 0)
        let redis = broker as? RedisBroker
        let now: [String: Int] = [
            "comet_messages_published_total": stats.messagesPublished.load(ordering: .relaxed),
            "comet_messages_delivered_total": stats.deliveries.load(ordering: .relaxed),
            "comet_slow_consumer_closes_total": stats.slowConsumerCloses.load(ordering: .relaxed),
            "comet_connections_refused_total": stats.connectionsRefused.load(ordering: .relaxed),
            "comet_accept_backoffs_total": stats.acceptBackoffs.load(ordering: .relaxed),
            "comet_broker_reconnects_total": redis?.reconnects ?? 0,
            "comet_broker_backfills_total": redis?.backfillCount ?? 0,
        ]
        return self.scrape.withLockedValue { last in
            for (name, counter) in self.totals {
                let delta = (now[name] ?? 0) - (last[name] ?? 0)
                if delta > 0 { counter.increment(by: Int64(delta)) }
                last[name] = max(now[name] ?? 0, last[name] ?? 0)
            }
            return ByteBuffer(bytes: self.registry.emitToBuffer())
        }
    }
}
