/// The reverse proxy in front of the application (`[proxy]`): which requests go to which upstream, and how long the
/// gateway waits for it.
public struct ProxyConfiguration: Sendable, Hashable {
    /// One `[[proxy.route]]`: requests for `host` (any when nil) whose path starts with `pathPrefix` go to `upstream`.
    public struct Route: Sendable, Hashable {
        /// The `Host` this route serves (its port, if any, is ignored); nil: any host.
        public var host: String?
        /// The path prefix this route serves; `/` serves every path.
        public var pathPrefix: String
        /// Where the requests go.
        public var upstream: Upstream

        public init(host: String? = nil, pathPrefix: String = "/", upstream: Upstream) {
            self.host = host
            self.pathPrefix = pathPrefix
            self.upstream = upstream
        }

        /// Whether this route serves a request for `path` with the `Host` header `host`.
        public func matches(host requestHost: String?, path: String) -> Bool {
            if let host = self.host {
                guard let requestHost, Self.hostName(requestHost) == host.lowercased() else { return false }
            }
            if self.pathPrefix == "/" { return true }
            guard path.hasPrefix(self.pathPrefix) else { return false }
            // `/app` serves `/app`, `/app/` and `/app/x`, not `/application`.
            return self.pathPrefix.hasSuffix("/") || path.utf8.count == self.pathPrefix.utf8.count
                || path.utf8.dropFirst(self.pathPrefix.utf8.count).first == UInt8(ascii: "/")
                || path.utf8.dropFirst(self.pathPrefix.utf8.count).first == UInt8(ascii: "?")
        }

        /// `Host` without its port, lowercased (`[::1]:8080` → `[::1]`).
        static func hostName(_ host: String) -> String {
            let lower = host.lowercased()
            if lower.hasPrefix("[") {
                return String(lower.prefix(while: { $0 != "]" })) + (lower.contains("]") ? "]" : "")
            }
            return String(lower.prefix(while: { $0 != ":" }))
        }
    }

    /// An upstream application: `http://HOST:PORT`.
    public struct Upstream: Sendable, Hashable, CustomStringConvertible {
        public var host: String
        public var port: Int

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        /// Parses `http://HOST[:PORT]` (port 80 by default; an IPv6 host in brackets; no path, query or user).
        public init(parsing text: String) throws(ConfigurationError) {
            guard text.hasPrefix("http://") else {
                throw ConfigurationError(key: nil, message: "must be http://HOST:PORT (https upstreams are not supported)")
            }
            var authority = Substring(text.dropFirst("http://".count))
            if authority.hasSuffix("/") { authority = authority.dropLast() }
            guard !authority.isEmpty, !authority.contains(where: { "/?#@ ".contains($0) }) else {
                throw ConfigurationError(key: nil, message: "must be http://HOST:PORT, without a path, query or user")
            }
            var host = authority
            var port = 80
            if authority.hasPrefix("[") {
                guard let close = authority.firstIndex(of: "]") else {
                    throw ConfigurationError(key: nil, message: "an IPv6 host is written [ADDRESS]")
                }
                host = authority[authority.index(after: authority.startIndex)..<close]
                let rest = authority[authority.index(after: close)...]
                if !rest.isEmpty {
                    guard rest.hasPrefix(":"), let number = Int(rest.dropFirst()) else {
                        throw ConfigurationError(key: nil, message: "bad port")
                    }
                    port = number
                }
            } else if let colon = authority.lastIndex(of: ":") {
                host = authority[..<colon]
                guard let number = Int(authority[authority.index(after: colon)...]) else {
                    throw ConfigurationError(key: nil, message: "bad port")
                }
                port = number
            }
            guard !host.isEmpty, (1...65535).contains(port) else {
                throw ConfigurationError(key: nil, message: "must name a host and a port from 1 to 65535")
            }
            self.host = String(host)
            self.port = port
        }

        public var description: String { "http://" + self.authority }

        /// `HOST:PORT` (`[IPV6]:PORT`), as a `Host` header names it.
        public var authority: String {
            self.host.contains(":") ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)"
        }
    }

    /// The routes, tried in order; none: the gateway proxies nothing (everything else is `404`).
    public var routes: [Route] = []
    /// Seconds to connect to an upstream before answering `502`.
    public var connectTimeout = 5.0
    /// Seconds to wait for an upstream's response head (after the request was sent) before answering `504`.
    public var responseTimeout = 30.0
    /// Peers (IP addresses) whose `X-Forwarded-*` and `Forwarded` headers are kept and added to; from any other
    /// peer they are replaced.
    public var trustedProxies: [String] = []
    /// Idle keep-alive connections kept per upstream and event loop.
    public var maxIdleConnections = 64
    /// The key of the `Grip-Sig` JWT (HS256) on every proxied request; nil: no signature.
    public var gripSignatureKey: String? = nil
    /// The JWT's `iss` claim.
    public var gripSignatureIssuer = "comet-gateway"

    public init() {}

    /// The route for a request, or nil.
    public func route(host: String?, path: String) -> Route? {
        self.routes.first { $0.matches(host: host, path: path) }
    }
}

/// The application's authorization endpoint (`auth.authorize_url`): `http://HOST[:PORT]/PATH`.
public struct AuthorizeEndpoint: Sendable, Hashable {
    public var upstream: ProxyConfiguration.Upstream
    /// The path, `/` at least, without a query.
    public var path: String

    public init(parsing text: String) throws(ConfigurationError) {
        guard text.hasPrefix("http://") else {
            throw ConfigurationError(key: nil, message: "must be http://HOST:PORT/PATH (https is not supported)")
        }
        let rest = text.dropFirst("http://".count)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        self.upstream = try ProxyConfiguration.Upstream(parsing: "http://" + rest[..<slash])
        let path = slash == rest.endIndex ? "/" : String(rest[slash...])
        guard !path.contains("?"), !path.contains("#"), !path.contains(" ") else {
            throw ConfigurationError(key: nil, message: "the path takes no query or fragment (the gateway adds ?channels=)")
        }
        self.path = path
    }
}
