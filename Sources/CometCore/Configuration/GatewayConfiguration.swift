/// A listening address: a host (IPv4, IPv6 or name) and a port.
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    /// The host to bind.
    public var host: String
    /// The port (0 lets the system choose).
    public var port: Int

    /// Creates an address.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT` or `[IPV6]:PORT` (an IPv6 address must be in brackets; the port is 0 to 65535 in digits).
    public init(parsing text: String) throws {
        let invalid = ConfigurationError(key: nil, message: "'\(text)' is not HOST:PORT or [IPV6]:PORT")
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[close...].hasPrefix("]:") else { throw invalid }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw invalid }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            guard !host.contains(":") else { throw invalid }  // unbracketed IPv6: where does the port start?
        }
        guard !host.isEmpty, !portText.isEmpty, portText.count <= 5,
              portText.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let port = Int(portText), (0...65535).contains(port)
        else { throw invalid }
        self.host = String(host)
        self.port = port
    }

    /// Whether the host is a loopback address: an IPv4 literal in 127.0.0.0/8, `::1`, or `localhost`.
    public var isLoopback: Bool {
        if self.host == "localhost" || self.host == "::1" || self.host == "0:0:0:0:0:0:0:1" { return true }
        let parts = self.host.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return false }
        let octets = parts.compactMap { part -> Int? in
            guard !part.isEmpty, part.count <= 3, part.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
            return Int(part).flatMap { $0 <= 255 ? $0 : nil }
        }
        return octets.count == 4 && octets[0] == 127
    }

    public var description: String { self.host.contains(":") ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)" }
}

/// Everything the gateway can be configured with. Every field has the default documented in `gateway.conf.example`.
public struct GatewayConfiguration: Sendable, Hashable {
    /// Listeners, threads and lifecycle (`[server]`).
    public struct Server: Sendable, Hashable {
        /// Where browsers subscribe.
        public var listen = ListenAddress(host: "0.0.0.0", port: 8080)
        /// Where backends publish.
        public var publishListen = ListenAddress(host: "127.0.0.1", port: 8081)
        /// The publish key (`Authorization: Bearer KEY`); required when ``publishListen`` is not loopback.
        public var publishKey: String? = nil
        /// Event-loop threads; 0 means one per core.
        public var threads = 0
        /// The most open connections on the public listener; 0 means the file-descriptor limit less a reserve.
        public var maxConnections = 0
        /// Seconds a graceful shutdown waits for connections to close before closing them.
        public var drainTimeout = 10.0
        /// Milliseconds SSE clients are told to wait before reconnecting when the gateway drains.
        public var drainRetry = 1000
        /// Whether `GET /` serves the demo page's publish form (`POST /demo/publish/{channel}` on the public
        /// listener): anyone who can reach the page can publish. Off by default.
        public var demo = false
        /// Whether plain-HTTP connections write straight to their socket (`send`, or `sendmsg` for a burst) while
        /// nothing of theirs waits in the event loop's write queue, which they use when the socket is full.
        public var directWrites = true
        /// A PEM file with the public listener's certificate (then its chain): with ``tlsPrivateKey``, the public
        /// listener speaks HTTPS (TLS 1.2 and 1.3). Nil: plain HTTP.
        public var tlsCertificate: String? = nil
        /// A PEM file with the private key of ``tlsCertificate``.
        public var tlsPrivateKey: String? = nil
        /// Creates the defaults.
        public init() {}
    }

    /// Request and connection limits (`[limits]`).
    public struct Limits: Sendable, Hashable {
        /// The most channels one subscription may name.
        public var maxChannelsPerSubscription = 16
        /// The longest channel name.
        public var maxChannelNameLength = 128
        /// The largest publish body, in bytes.
        public var maxPublishBodyBytes = 64 * 1024
        /// The most messages in one batch publish.
        public var maxBatchMessages = 1000
        /// The longest request target (path and query), in bytes.
        public var maxURIBytes = 8 * 1024
        /// The most header bytes in one request.
        public var maxHeaderBytes = 16 * 1024
        /// The most bytes held for a subscriber that does not read before it is closed as a slow consumer.
        public var maxOutboundBytes = 1024 * 1024
        /// Seconds allowed to receive a complete request once its first byte arrived; also how long a closing
        /// connection waits for its client to read what is still queued for it.
        public var requestTimeout = 10.0
        /// Seconds an idle keep-alive connection is kept open.
        public var idleTimeout = 60.0
        /// Creates the defaults.
        public init() {}
    }

    /// Transport settings (`[transports]`).
    public struct Transports: Sendable, Hashable {
        /// The longest (and default) long-poll hold, in seconds.
        public var pollTimeout = 30.0
        /// Seconds between heartbeats on idle streams (SSE comments, empty NDJSON lines).
        public var heartbeatInterval = 15.0
        /// The SSE `retry:` sent at the start of each stream, in milliseconds.
        public var sseRetry = 3000
        /// Page origins allowed to use the gateway cross-origin: CORS on the HTTP transports, the forever iframe's
        /// `postMessage` target, a browser's WebSocket `Origin`. Empty (the default): same origin only. `*` allows any
        /// origin for CORS without credentials, and never for `postMessage` or WebSocket.
        public var allowedOrigins: [String] = []
        /// Whitespace bytes at the start of a forever iframe, before its first script.
        public var iframePadding = 2048
        /// Bytes of messages after which a forever iframe ends its document and tells the page to reconnect.
        public var iframeMaxBytes = 1024 * 1024
        /// Creates the defaults.
        public init() {}
    }

    /// WebSocket limits (`[websocket]`).
    public struct WebSocket: Sendable, Hashable {
        /// The largest frame payload a client may send.
        public var maxFrameBytes = 16 * 1024
        /// The largest message a client may send, all fragments together.
        public var maxMessageBytes = 16 * 1024
        /// The most frames one client message may be split into.
        public var maxFragments = 16
        /// The most messages (control messages and pings) a client may send per second, as a burst and as a rate.
        public var maxMessagesPerSecond = 20
        /// Creates the defaults.
        public init() {}
    }

    /// Which broker carries messages (`[broker]`).
    public struct Broker: Sendable, Hashable {
        /// `memory`: the embedded single-node broker; `redis`: channels, ids and history in Redis, shared by every
        /// node configured with the same Redis and key prefix.
        public var type = "memory"
        /// `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]`.
        public var redisURL = "redis://127.0.0.1:6379"
        /// Prefix of every Redis key and pub/sub channel.
        public var keyPrefix = "comet:"
        /// Seconds to connect to Redis (and log in).
        public var connectTimeout = 2.0
        /// Seconds Redis has to answer a command before the connection is dropped and made again.
        public var commandTimeout = 5.0
        /// Creates the defaults.
        public init() {}
    }

    /// The Bayeux (CometD) endpoint (`[bayeux]`).
    public struct Bayeux: Sendable, Hashable {
        /// Whether the public listener serves the endpoint.
        public var enabled = true
        /// The endpoint's path: it answers there and below it (`/cometd/connect`, as CometD clients append the
        /// message type), and nowhere else.
        public var path = "/cometd"
        /// Seconds a `/meta/connect` is held when nothing is queued (`advice.timeout`, in milliseconds); a client's
        /// own `advice.timeout` may shorten it.
        public var timeout = 30.0
        /// Seconds a client waits between a connect reply and its next connect (`advice.interval`, in milliseconds).
        public var interval = 0.0
        /// Seconds a client may go without a held `/meta/connect` before it is forgotten.
        public var sessionTimeout = 60.0
        /// The most messages queued for one client between two connects; past it the oldest are dropped and the
        /// client is told (`ext.gap` of its next connect reply).
        public var maxQueue = 1000
        /// The most clients (sessions) one node holds; handshakes past it are refused.
        public var maxSessions = 50_000
        /// The most messages in one request (a batch).
        public var maxBatchMessages = 100
        /// The most subscriptions (channels and wildcards) one client may hold.
        public var maxSubscriptions = 100
        /// The application's URL (`http://HOST:PORT/PATH`) that client publishes are POSTed to; nil: clients cannot
        /// publish.
        public var relayURL: String? = nil
        /// Seconds the application has to answer a relayed publish.
        public var relayTimeout = 5.0
        /// Creates the defaults.
        public init() {}
    }

    /// `[server]`.
    public var server = Server()
    /// `[bayeux]`.
    public var bayeux = Bayeux()
    /// `[limits]`.
    public var limits = Limits()
    /// `[transports]`.
    public var transports = Transports()
    /// `[history]`.
    public var history = HistoryLimits()
    /// `[websocket]`.
    public var webSocket = WebSocket()
    /// `[broker]`.
    public var broker = Broker()
    /// `[proxy]` and its `[[proxy.route]]` tables.
    public var proxy = ProxyConfiguration()
    /// `[auth]`.
    public var auth = Auth()

    /// Who may subscribe (`[auth]`).
    public struct Auth: Sendable, Hashable {
        /// The key of signed channel tokens: when set, every subscription needs a token for its channels
        /// (`?token=` or `X-Comet-Token`, and `"token"` in a WebSocket subscribe message). Nil: no tokens.
        public var channelTokenKey: String? = nil
        /// The application's authorization endpoint (`http://HOST:PORT/PATH`): when set, every subscription is
        /// admitted only when `GET PATH?channels=…` (with the subscriber's `Cookie` and `Authorization`) answers 2xx.
        public var authorizeURL: String? = nil
        /// Seconds to wait for the authorization endpoint before refusing (`503`).
        public var authorizeTimeout = 5.0
        /// Seconds a positive answer is reused for the same cookies, `Authorization` and channels (0: never).
        public var authorizeCache = 10.0
        /// Creates the defaults.
        public init() {}
    }
    /// `[log] level`: trace, debug, info, notice, warning, error or critical.
    public var logLevel = "info"

    /// Creates the defaults.
    public init() {}

    /// The subscribe-parsing limits this configuration implies.
    public var subscribeLimits: SubscribeLimits {
        SubscribeLimits(
            maxChannels: self.limits.maxChannelsPerSubscription,
            maxChannelNameLength: self.limits.maxChannelNameLength,
            pollTimeout: self.transports.pollTimeout
        )
    }

    /// Checks the rules that involve several keys.
    /// - Throws: ``ConfigurationError`` naming the key at fault.
    public func validate() throws {
        if !self.server.publishListen.isLoopback && (self.server.publishKey ?? "").isEmpty {
            throw ConfigurationError(
                key: "server.publish_key",
                message: "a publish key is required when publish_listen (\(self.server.publishListen)) is not loopback"
            )
        }
        if (self.server.tlsCertificate == nil) != (self.server.tlsPrivateKey == nil) {
            throw ConfigurationError(
                key: self.server.tlsCertificate == nil ? "server.tls_certificate" : "server.tls_private_key",
                message: "HTTPS needs both server.tls_certificate and server.tls_private_key"
            )
        }
        if self.broker.type != "memory" && self.broker.type != "redis" {
            throw ConfigurationError(key: "broker.type", message: "unknown broker '\(self.broker.type)' (memory, redis)")
        }
        if self.broker.type == "redis" {
            let url = self.broker.redisURL
            guard url.hasPrefix("redis://"), url.count > "redis://".count,
                  url.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
            else {
                throw ConfigurationError(key: "broker.redis_url",
                                         message: "a redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] URL (rediss:// is not supported)")
            }
            if self.broker.keyPrefix.isEmpty || !self.broker.keyPrefix.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "{") && $0 != UInt8(ascii: "}") }) {
                throw ConfigurationError(key: "broker.key_prefix", message: "visible ASCII without braces, not empty")
            }
        }
        if self.transports.allowedOrigins.contains(where: { $0 != "*" && !Self.isOrigin($0) }) {
            throw ConfigurationError(key: "transports.allowed_origins",
                                     message: "each entry is \"*\" or an origin such as \"https://app.example.com\"")
        }
        if let url = self.auth.authorizeURL {
            do {
                _ = try AuthorizeEndpoint(parsing: url)
            } catch var error {
                error.key = "auth.authorize_url"
                throw error
            }
        }
        if let url = self.bayeux.relayURL {
            do {
                _ = try AuthorizeEndpoint(parsing: url)
            } catch var error {
                error.key = "bayeux.relay_url"
                throw error
            }
        }
        let bayeuxPath = self.bayeux.path
        if !bayeuxPath.hasPrefix("/") || bayeuxPath.count < 2 || bayeuxPath.hasSuffix("/")
            || !bayeuxPath.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "?") && $0 != UInt8(ascii: "#") })
            || bayeuxPath == "/sub" || bayeuxPath.hasPrefix(SubscribeRequest.pathPrefix) || bayeuxPath == "/healthz" {
            throw ConfigurationError(key: "bayeux.path",
                                     message: "an absolute path such as \"/cometd\" (not / or a gateway route, no trailing /)")
        }
        if let bad = self.proxy.trustedProxies.first(where: { !Self.isIPAddress($0) }) {
            throw ConfigurationError(key: "proxy.trusted_proxies",
                                     message: "'\(bad)' is not an IP address (each entry is one, such as \"127.0.0.1\" or \"::1\")")
        }
        let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
        if !levels.contains(self.logLevel) {
            throw ConfigurationError(key: "log.level", message: "must be one of \(levels.joined(separator: ", "))")
        }
    }
}

extension GatewayConfiguration {
    /// Whether `text` is an IPv4 address (four decimal octets) or an IPv6 address (hex groups and colons, with at
    /// most one `::`, or an embedded IPv4 tail).
    static func isIPAddress(_ text: String) -> Bool {
        let octets = text.split(separator: ".", omittingEmptySubsequences: false)
        if octets.count == 4, octets.allSatisfy({ !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isNumber) && Int($0)! <= 255 }) {
            return true
        }
        guard text.contains(":"), text.count <= 45 else { return false }
        guard text.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else { return false }
        let doubleColons = text.split(separator: ":", omittingEmptySubsequences: false).count - 1
        guard text.components(separatedByDouble: "::") <= 2, doubleColons <= 8 else { return false }
        return true
    }

    /// Whether `text` is an origin as browsers send it: `http://` or `https://`, a host and an optional port, nothing else.
    static func isOrigin(_ text: String) -> Bool {
        for scheme in ["http://", "https://"] where text.hasPrefix(scheme) {
            let authority = text.dropFirst(scheme.count)
            return !authority.isEmpty && authority.allSatisfy { $0.isASCII && !$0.isWhitespace && !"/?#@\\\"".contains($0) }
        }
        return false
    }
}

/// A configuration error: the file, line and key at fault when known.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    /// The configuration file, if the error came from one.
    public var file: String?
    /// The 1-based line, if known.
    public var line: Int?
    /// The dotted key (`limits.max_uri_bytes`), if the error is about one.
    public var key: String?
    /// What is wrong.
    public var message: String

    /// Creates an error.
    public init(file: String? = nil, line: Int? = nil, key: String?, message: String) {
        self.file = file
        self.line = line
        self.key = key
        self.message = message
    }

    public var description: String {
        var location = self.file ?? "configuration"
        if let line { location += ":\(line)" }
        if let key { return "\(location): \(key): \(self.message)" }
        return "\(location): \(self.message)"
    }
}

extension String {
    /// How many pieces `separator` cuts this string into.
    fileprivate func components(separatedByDouble separator: String) -> Int {
        var count = 1
        var rest = self[...]
        while let range = rest.firstRange(of: separator) {
            count += 1
            rest = rest[range.upperBound...]
        }
        return count
    }
}
