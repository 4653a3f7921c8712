import CometCore
import NIOCore

/// What the Bayeux endpoint shares across connections and loops: its configuration, the node's sessions and the
/// publish relay.
final class BayeuxService: Sendable {
    let configuration: GatewayConfiguration.Bayeux
    let sessions: BayeuxSessions
    /// Nil when `bayeux.relay_url` is not set: client publishes are refused.
    let relay: PublishRelay?

    /// `advice` as every handshake and connect reply carries it, encoded once.
    let encodedAdvice: ByteBuffer

    init(configuration: GatewayConfiguration) {
        self.configuration = configuration.bayeux
        self.sessions = BayeuxSessions(maxSessions: configuration.bayeux.maxSessions)
        self.relay = PublishRelay(configuration: configuration)
        self.encodedAdvice = Self.advice(configuration.bayeux, reconnect: "retry").jsonText
    }

    /// `advice` with `reconnect` (and the configured interval and timeout, in milliseconds).
    static func advice(_ configuration: GatewayConfiguration.Bayeux, reconnect: String) -> JSONValue {
        .object([
            "reconnect": .string(reconnect),
            "interval": .number((configuration.interval * 1000).rounded()),
            "timeout": .number((configuration.timeout * 1000).rounded()),
        ])
    }

    /// Whether a path is the endpoint's: the configured path, or below it (`/cometd/connect`).
    func serves(path: String) -> Bool {
        guard self.configuration.enabled, path.hasPrefix(self.configuration.path) else { return false }
        let rest = path.utf8.dropFirst(self.configuration.path.utf8.count)
        return rest.isEmpty || rest.first == UInt8(ascii: "/")
    }

    /// Answers every held connect at once with `advice.reconnect: "handshake"` (a graceful shutdown: clients go to
    /// another node).
    func quiesce() {
        for handle in self.sessions.all {
            handle.loop.execute { handle.session.value.end(reconnect: "handshake") }
        }
    }
}
