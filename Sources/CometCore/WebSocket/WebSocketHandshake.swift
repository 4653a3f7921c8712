/// Checks a request to open a WebSocket (RFC 6455, section 4.2.1) and the browser origin it comes from.
public enum WebSocketHandshake {
    /// The GUID appended to the key before hashing (RFC 6455, section 1.3).
    public static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    /// Validates the head of an upgrade request; returns its `Sec-WebSocket-Key`.
    /// - Throws: ``GatewayError``: `400` for a malformed handshake, `426` (with `Sec-WebSocket-Version: 13` to send)
    ///   for another protocol version.
    public static func key(of head: RequestHead) throws -> String {
        guard head.method == .get else { throw GatewayError(.methodNotAllowed, "a WebSocket opens with GET") }
        guard head.minorVersion >= 1 else { throw GatewayError.badRequest("a WebSocket needs HTTP/1.1") }
        guard Self.upgradesToWebSocket(head) else { throw GatewayError.badRequest("Upgrade must be websocket") }
        guard head.first(name: "sec-websocket-version")?.trimmingSpaces == "13" else {
            throw GatewayError(.upgradeRequired, "only WebSocket version 13 is supported")
        }
        guard let key = head.first(name: "sec-websocket-key").map({ String($0.trimmingSpaces) }), Self.isValidKey(key) else {
            throw GatewayError.badRequest("Sec-WebSocket-Key must be 16 bytes in base64")
        }
        return key
    }

    /// Whether the request's `Upgrade` header asks for `websocket` (any other upgrade, h2c say, is not ours to take).
    public static func upgradesToWebSocket(_ head: RequestHead) -> Bool {
        guard let upgrade = head.first(name: "upgrade") else { return false }
        return upgrade.split(separator: ",").contains { $0.trimmingSpaces.lowercased() == "websocket" }
    }

    /// Whether `key` is the base64 encoding of 16 bytes: 22 base64 characters and `==`.
    static func isValidKey(_ key: String) -> Bool {
        let bytes = Array(key.utf8)
        guard bytes.count == 24, bytes[22] == UInt8(ascii: "="), bytes[23] == UInt8(ascii: "=") else { return false }
        return bytes[0..<22].allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "/"): true
            default: false
            }
        }
    }

    /// Whether a browser's `origin` is the gateway's own: the same host and port as the request's `Host`
    /// (`http://localhost:8080` for `Host: localhost:8080`; a default port may be left out of either).
    public static func isSameOrigin(_ origin: String, host: String?) -> Bool {
        guard let host, let (scheme, authority) = Self.split(origin) else { return false }
        let defaultPort = scheme == "https" ? "443" : "80"
        return Self.normalize(authority, defaultPort: defaultPort) == Self.normalize(host, defaultPort: defaultPort)
    }

    private static func split(_ origin: String) -> (scheme: String, authority: String)? {
        let lower = origin.lowercased()
        for scheme in ["http", "https"] where lower.hasPrefix(scheme + "://") {
            let authority = lower.dropFirst(scheme.count + 3)
            guard !authority.isEmpty, !authority.contains("/") else { return nil }
            return (scheme, String(authority))
        }
        return nil
    }

    private static func normalize(_ authority: String, defaultPort: String) -> String {
        let lower = authority.lowercased()
        // An IPv6 literal is bracketed; a port follows the last colon after the host.
        if let colon = lower.lastIndex(of: ":"), !lower[colon...].contains("]") {
            return lower
        }
        return lower + ":" + defaultPort
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces and tabs (optional whitespace in HTTP fields).
    public var trimmingSpaces: Substring {
        var text = Substring(self)
        while text.first == " " || text.first == "\t" { text.removeFirst() }
        while text.last == " " || text.last == "\t" { text.removeLast() }
        return text
    }
}

extension GatewayError.Code {
    /// `426 Upgrade Required`.
    public static let upgradeRequired = GatewayError.Code(426, "Upgrade Required")
    /// `403 Forbidden`.
    public static let forbidden = GatewayError.Code(403, "Forbidden")
}

/// Base64 (RFC 4648, with padding), for the handshake's accept value.
public enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// Encodes `bytes`.
    public static func encode<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> String {
        let input = Array(bytes)
        var output: [UInt8] = []
        output.reserveCapacity((input.count + 2) / 3 * 4)
        var index = 0
        while index < input.count {
            let b0 = input[index]
            let b1 = index + 1 < input.count ? input[index + 1] : 0
            let b2 = index + 2 < input.count ? input[index + 2] : 0
            output.append(Self.alphabet[Int(b0 >> 2)])
            output.append(Self.alphabet[Int((b0 & 0x03) << 4 | b1 >> 4)])
            output.append(index + 1 < input.count ? Self.alphabet[Int((b1 & 0x0F) << 2 | b2 >> 6)] : UInt8(ascii: "="))
            output.append(index + 2 < input.count ? Self.alphabet[Int(b2 & 0x3F)] : UInt8(ascii: "="))
            index += 3
        }
        return String(decoding: output, as: UTF8.self)
    }
}
