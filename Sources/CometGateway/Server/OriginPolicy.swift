import CometCore

/// Which page origins may use the gateway cross-origin (`transports.allowed_origins`): one list for CORS, the
/// forever iframe's `postMessage` target and a browser's WebSocket `Origin`. Empty by default: same origin only.
struct OriginPolicy: Sendable {
    let allowed: [String]

    init(configuration: GatewayConfiguration) {
        self.allowed = configuration.transports.allowedOrigins
    }

    /// CORS headers for a request from `origin`: the origin itself with credentials allowed when it is listed, `*`
    /// (without credentials) when the list has `*`, nothing otherwise (the browser then refuses the response).
    func corsHeaders(origin: String?) -> [(String, String)] {
        guard let origin, !self.allowed.isEmpty else { return [] }
        if self.allowed.contains(origin) {
            return [("Access-Control-Allow-Origin", origin), ("Access-Control-Allow-Credentials", "true"), ("Vary", "Origin")]
        }
        if self.allowed.contains("*") {
            return [("Access-Control-Allow-Origin", "*")]
        }
        return []
    }

    /// Whether a forever iframe may post to `origin`: only an origin listed exactly (never through `*`).
    func allowsPostMessage(to origin: String) -> Bool {
        self.allowed.contains(origin)
    }

    /// Whether a WebSocket may open from `origin`: no `Origin` (not a browser), the gateway's own origin (the same
    /// host and port as `host`), or an origin listed exactly (never through `*`: a socket carries the user's cookies).
    func allowsWebSocket(origin: String?, host: String?) -> Bool {
        guard let origin else { return true }
        return WebSocketHandshake.isSameOrigin(origin, host: host) || self.allowed.contains(origin)
    }
}
