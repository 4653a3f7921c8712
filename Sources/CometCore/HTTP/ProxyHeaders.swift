/// The header rewriting of a reverse proxy (RFC 9110 section 7.6): what goes to the upstream for a client's request,
/// and what goes back to the client of the upstream's response.
///
/// Hop-by-hop headers (`Connection` and every header it names, `Keep-Alive`, `TE`, `Trailer`, `Transfer-Encoding`,
/// `Upgrade`, `Proxy-*`) never cross; the proxy frames each side itself. A client's `Grip-*` headers never reach the
/// upstream (they are the upstream's instructions to the gateway, GRIP). `X-Forwarded-For`, `X-Forwarded-Proto`,
/// `X-Forwarded-Host` and `Forwarded` say who asked: taken over from the request (and added to) only when the
/// client is a trusted proxy, otherwise replaced.
public enum ProxyHeaders {
    /// Who sent the request, as the gateway saw it.
    public struct Client: Sendable, Equatable {
        /// The peer's IP address (`127.0.0.1`, `::1`).
        public var address: String
        /// `http` or `https`: how the client reached the gateway.
        public var scheme: String
        /// Whether the peer is one of `proxy.trusted_proxies`: its `X-Forwarded-*` and `Forwarded` are kept.
        public var trusted: Bool

        public init(address: String, scheme: String, trusted: Bool) {
            self.address = address
            self.scheme = scheme
            self.trusted = trusted
        }
    }

    /// Whether `name` (lowercased) is hop-by-hop by itself.
    static func isHopByHop(_ name: String) -> Bool {
        switch name {
        case "connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade", "proxy-connection":
            return true
        default:
            return name.hasPrefix("proxy-")
        }
    }

    /// Whether `name` is certainly not hop-by-hop, a framing header or `Grip-*`: its first letter (any case) starts
    /// none of them (`c`onnection/`c`ontent-length, `k`eep-alive, `t`e/`t`railer/`t`ransfer-encoding, `u`pgrade,
    /// `p`roxy-*, `g`rip-*).
    @inline(__always)
    static func plainlyEndToEnd(_ name: String) -> Bool {
        guard let first = name.utf8.first else { return false }
        switch first | 0x20 {
        case UInt8(ascii: "c"), UInt8(ascii: "k"), UInt8(ascii: "t"), UInt8(ascii: "u"), UInt8(ascii: "p"),
             UInt8(ascii: "g"):
            return false
        default:
            return true
        }
    }

    /// The lowercased names a `Connection` header lists.
    static func connectionOptions(_ headers: [(name: String, value: String)]) -> Set<String> {
        var names = Set<String>()
        for (name, value) in headers where name.utf8.count == 10 && name.lowercased() == "connection" {
            for token in value.split(separator: ",") {
                let option = token.trimmingSpaces.lowercased()
                if !option.isEmpty { names.insert(option) }
            }
        }
        return names
    }

    /// The headers of the request to the upstream for a client's request with `headers`.
    ///
    /// - Parameters:
    ///   - headers: The client's request headers, in order.
    ///   - client: Who sent it.
    ///   - chunkedBody: The client's body is chunked: the upstream gets it chunked too (`Transfer-Encoding: chunked`).
    ///   - upgrade: The request is an upgrade tunnelled to the upstream (a WebSocket that is not the gateway's):
    ///     `Upgrade` and `Connection: upgrade` are kept.
    public static func request(_ headers: [(name: String, value: String)], client: Client, chunkedBody: Bool,
                               upgrade: Bool = false) -> [(String, String)] {
        let named = Self.connectionOptions(headers)
        var out: [(String, String)] = []
        out.reserveCapacity(headers.count + 4)
        var forwardedFor: [String] = []
        var forwardedProto: String?
        var forwardedHost: String?
        var forwarded: [String] = []
        var host: String?
        var upgradeValue: String?
        for (name, value) in headers {
            let lower = name.lowercased()
            switch lower {
            case "x-forwarded-for":
                if client.trusted { forwardedFor.append(value) }
                continue
            case "x-forwarded-proto":
                if client.trusted, forwardedProto == nil { forwardedProto = value }
                continue
            case "x-forwarded-host":
                if client.trusted, forwardedHost == nil { forwardedHost = value }
                continue
            case "forwarded":
                if client.trusted { forwarded.append(value) }
                continue
            case "host":
                if host == nil { host = value }
            case "upgrade":
                upgradeValue = value
            default:
                break
            }
            if Self.isHopByHop(lower) || named.contains(lower) || lower.hasPrefix("grip-") { continue }
            out.append((name, value))
        }
        if upgrade, let upgradeValue {
            out.append(("Connection", "upgrade"))
            out.append(("Upgrade", upgradeValue))
        }
        if chunkedBody { out.append(("Transfer-Encoding", "chunked")) }
        forwardedFor.append(client.address)
        out.append(("X-Forwarded-For", forwardedFor.joined(separator: ", ")))
        out.append(("X-Forwarded-Proto", forwardedProto ?? client.scheme))
        if let originalHost = forwardedHost ?? host { out.append(("X-Forwarded-Host", originalHost)) }
        var element = "for=\(Self.forwardedNode(client.address))"
        if let host { element += ";host=\(Self.forwardedValue(host))" }
        element += ";proto=\(client.scheme)"
        forwarded.append(element)
        out.append(("Forwarded", forwarded.joined(separator: ", ")))
        return out
    }

    /// The headers of the response to the client for the upstream's response `headers` (its framing headers are
    /// dropped too: the gateway frames the body it relays).
    public static func response(_ headers: [(name: String, value: String)], upgrade: Bool = false) -> [(String, String)] {
        // `close` and `keep-alive` name no other header (`Keep-Alive` is hop-by-hop anyway).
        let named = Self.connectionOptions(headers).subtracting(["close", "keep-alive"])
        var out: [(String, String)] = []
        out.reserveCapacity(headers.count)
        for (name, value) in headers {
            // The usual headers of a response pass without a lowercased copy of their name.
            if named.isEmpty, !upgrade, Self.plainlyEndToEnd(name) {
                out.append((name, value))
                continue
            }
            let lower = name.lowercased()
            if upgrade, lower == "upgrade" {
                out.append((name, value))
                continue
            }
            if Self.isHopByHop(lower) || named.contains(lower) || lower == "content-length" || lower.hasPrefix("grip-") {
                continue
            }
            out.append((name, value))
        }
        if upgrade { out.append(("Connection", "upgrade")) }
        return out
    }

    /// A `Forwarded` node: an IPv6 address is bracketed and quoted (RFC 7239 section 6).
    static func forwardedNode(_ address: String) -> String {
        address.contains(":") ? "\"[\(address)]\"" : address
    }

    /// A `Forwarded` value: a token as is, anything else quoted.
    static func forwardedValue(_ value: String) -> String {
        let token = value.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                 UInt8(ascii: "~"), UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"),
                 UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "^"),
                 UInt8(ascii: "`"), UInt8(ascii: "|"):
                return true
            default:
                return false
            }
        }
        if token, !value.isEmpty { return value }
        let escaped = value.replacingAll("\\", with: "\\\\").replacingAll("\"", with: "\\\"")
        return "\"\(escaped)\""
    }
}

extension String {
    /// This string with every `target` replaced by `replacement` (no Foundation in the core).
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = self[...]
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        result += rest
        return result
    }
}
