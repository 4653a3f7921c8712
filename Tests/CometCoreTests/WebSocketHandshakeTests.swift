import CometCore
import NIOCore
import Testing

// Unit tests for `WebSocketHandshake` (RFC 6455, section 4.2.1; origins per RFC 6454) and `Base64` (RFC 4648).
// Request heads come from `HTTPRequestParser`, fed the raw bytes a browser would send.

@Suite("WebSocketHandshake")
struct WebSocketHandshakeTests {
    /// RFC 6455 section 1.3's example key.
    static let rfcKey = "dGhlIHNhbXBsZSBub25jZQ=="

    /// The header lines of a valid opening handshake (RFC 6455 section 1.2), with `overrides` replacing (or, with
    /// nil, removing) the field of that name; fields not in the base list are added.
    static func headerLines(_ overrides: [(String, String?)] = []) -> [String] {
        var fields: [(String, String?)] = [
            ("Host", "server.example.com"),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", rfcKey),
            ("Origin", "http://example.com"),
            ("Sec-WebSocket-Version", "13"),
        ]
        for (name, value) in overrides {
            if let index = fields.firstIndex(where: { $0.0.lowercased() == name.lowercased() }) {
                fields[index].1 = value
            } else {
                fields.append((name, value))
            }
        }
        return fields.compactMap { name, value in value.map { "\(name): \($0)" } }
    }

    /// Parses a request head from raw bytes.
    static func head(method: String = "GET", uri: String = "/chat", version: String = "HTTP/1.1", _ overrides: [(String, String?)] = []) throws -> RequestHead {
        let raw = ([method + " " + uri + " " + version] + Self.headerLines(overrides)).joined(separator: "\r\n") + "\r\n\r\n"
        var parser = HTTPRequestParser()
        var buffer = ByteBuffer(string: raw)
        let event = try parser.next(&buffer)
        guard case .head(let head)? = event else {
            Issue.record("the request parser did not yield a head for \(raw.debugDescription)")
            throw GatewayError(.badRequest, "no head")
        }
        return head
    }

    // MARK: key(of:)

    @Test("RFC 6455's example handshake is accepted and its key returned")
    func rfcExample() throws {
        let head = try Self.head()
        #expect(head.isUpgrade, "the request parser sees an upgrade (Connection: Upgrade and Upgrade)")
        #expect(try WebSocketHandshake.key(of: head) == Self.rfcKey)
    }

    @Test("the GUID is RFC 6455's")
    func guid() {
        #expect(WebSocketHandshake.guid == "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
    }

    @Test("Upgrade names websocket in any case, possibly among other protocols", arguments: ["websocket", "WebSocket", "WEBSOCKET", "h2c, websocket", "websocket , foo", "foo,WebSocket"])
    func upgradeCaseInsensitive(_ upgrade: String) throws {
        #expect(try WebSocketHandshake.key(of: Self.head([("Upgrade", upgrade)])) == Self.rfcKey)
    }

    @Test("a request that does not upgrade to websocket is a 400", arguments: ["h2c", "websockets", "web socket", "", "websocket/13x"] as [String?] + [nil])
    func wrongUpgrade(_ upgrade: String?) throws {
        let head = try Self.head([("Upgrade", upgrade)])
        expectGatewayError(.badRequest) { _ = try WebSocketHandshake.key(of: head) }
    }

    @Test("a version other than 13 is a 426 (the response then offers version 13)", arguments: ["8", "12", "14", "", "13, 8", "013", "thirteen"] as [String?] + [nil])
    func wrongVersion(_ version: String?) throws {
        let head = try Self.head([("Sec-WebSocket-Version", version)])
        let error = expectGatewayError(.upgradeRequired) { _ = try WebSocketHandshake.key(of: head) }
        #expect(error?.code.status == 426)
    }

    @Test(
        "a missing or malformed key is a 400",
        arguments: [
            nil,
            "",
            "dGhlIHNhbXBsZSBub25jZQ",  // no padding
            "dGhlIHNhbXBsZSBub25jZQ=",  // one padding character
            "dGhlIHNhbXBsZSBub25jZQ=A",  // 24 characters, padding in the middle
            "dGhlIHNhbXBsZSBub25jZQA=",
            "dGhlIHNhbXBsZSBub25jZQ===",
            "dGhlIHNhbXBsZSBub25jZ==",  // 23 characters
            "dGhlIHNhbXBsZSBub25jZQAA",  // 24 characters, no padding (18 bytes)
            "dGhlIHNhbXBsZSBub25jZQ==AAAA",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAA=",  // 20 bytes
            "dGhlIHNhbXBsZSBub25j-Q==",  // base64url alphabet
            "dGhlIHNhbXBsZSBub25j_Q==",
            "dGhlIHNhbXBsZSBub25j!Q==",
            "dGhlIHNhbXBs ZSBub25jQ==",
            "dGhlIHNhbXBsZSBub25jZ=Q=",
            "ZGhsSUhOaGJYQnNaU0J1YjI1alpRPT0=",  // the key base64-encoded again
            "dGhlIHNhbXBsZSBub25jZé==",
        ] as [String?]
    )
    func invalidKey(_ key: String?) throws {
        let head = try Self.head([("Sec-WebSocket-Key", key)])
        expectGatewayError(.badRequest) { _ = try WebSocketHandshake.key(of: head) }
    }

    @Test("keys of any 16 bytes are accepted", arguments: ["AAAAAAAAAAAAAAAAAAAAAA==", "/////////////////////w==", "AQIDBAUGBwgJCgsMDQ4PEA==", "+/+/+/+/+/+/+/+/+/+/+w=="])
    func validKeys(_ key: String) throws {
        #expect(try WebSocketHandshake.key(of: Self.head([("Sec-WebSocket-Key", key)])) == key)
    }

    @Test("spaces around the key are not part of it")
    func keyTrimmed() throws {
        // The request parser already strips optional whitespace around field values.
        #expect(try WebSocketHandshake.key(of: Self.head([("Sec-WebSocket-Key", " \t" + Self.rfcKey + "  ")])) == Self.rfcKey)
    }

    @Test("a method other than GET is a 405, whatever the rest", arguments: ["POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "get"])
    func notGet(_ method: String) throws {
        let head = try Self.head(method: method)
        expectGatewayError(.methodNotAllowed) { _ = try WebSocketHandshake.key(of: head) }
    }

    @Test("an HTTP/1.0 request is a 400")
    func http10() throws {
        let head = try Self.head(version: "HTTP/1.0")
        expectGatewayError(.badRequest) { _ = try WebSocketHandshake.key(of: head) }
    }

    @Test("errors never repeat the client's header values")
    func reasonsDoNotEchoInput() throws {
        let hostile = "<script>alert(1)</script>"
        let heads = [
            try Self.head([("Upgrade", hostile)]),
            try Self.head([("Sec-WebSocket-Version", hostile)]),
            try Self.head([("Sec-WebSocket-Key", hostile)]),
        ]
        for head in heads {
            do {
                _ = try WebSocketHandshake.key(of: head)
                Issue.record("expected an error")
            } catch let error as GatewayError {
                #expect(!error.reason.contains("<script>"))
                #expect(!error.reason.contains("alert"))
            }
        }
    }

    // MARK: isSameOrigin

    @Test(
        "an origin is the gateway's own when scheme-default-port, host and port match the Host header",
        arguments: [
            ("http://localhost:8080", "localhost:8080", true),
            ("http://example.com", "example.com:80", true),
            ("http://example.com:80", "example.com", true),
            ("http://example.com", "example.com", true),
            ("https://example.com", "example.com:443", true),
            ("https://example.com:443", "example.com:443", true),
            ("HTTP://LocalHost:8080", "localhost:8080", true),  // scheme and host are case-insensitive
            ("http://localhost:8080", "LOCALHOST:8080", true),
            ("http://[::1]:8080", "[::1]:8080", true),
            ("http://[::1]", "[::1]:80", true),
            ("http://[::1]", "[::1]", true),
            ("https://[2001:db8::1]", "[2001:db8::1]:443", true),
            ("http://127.0.0.1:8080", "127.0.0.1:8080", true),

            ("http://localhost:8081", "localhost:8080", false),  // other port
            ("http://localhost", "localhost:8080", false),
            ("http://localhost:8080", "localhost", false),
            ("http://evil.com:8080", "localhost:8080", false),  // other host
            ("http://localhost.evil.com:8080", "localhost:8080", false),
            ("http://localhost:8080.evil.com", "localhost:8080", false),
            ("http://evil.com", "example.com", false),
            ("http://example.com", "example.com:443", false),  // http's default port is 80
            ("https://example.com", "example.com:80", false),  // https's default port is 443
            ("https://example.com", "example.com:8443", false),
            ("http://[::1]:8080", "[::1]:8081", false),
            ("http://[::1]:8080", "[::2]:8080", false),
            ("http://[::1]:8080", "[::1]", false),
            ("http://[::1]", "[::1]:8080", false),
            ("http://localhost:8080/", "localhost:8080", false),  // an origin has no path
            ("http://localhost:8080/app", "localhost:8080", false),
            ("null", "localhost:8080", false),  // an opaque origin
            ("", "localhost:8080", false),
            ("localhost:8080", "localhost:8080", false),  // no scheme
            ("ws://localhost:8080", "localhost:8080", false),
            ("ftp://localhost:8080", "localhost:8080", false),
            ("file://localhost:8080", "localhost:8080", false),
            ("http://", "", false),
            ("http://user@localhost:8080", "localhost:8080", false),
        ] as [(String, String, Bool)]
    )
    func sameOrigin(_ origin: String, _ host: String, _ expected: Bool) {
        #expect(WebSocketHandshake.isSameOrigin(origin, host: host) == expected)
    }

    @Test("without a Host header no origin is the gateway's own")
    func noHost() {
        #expect(!WebSocketHandshake.isSameOrigin("http://localhost:8080", host: nil))
        #expect(!WebSocketHandshake.isSameOrigin("null", host: nil))
    }

    // MARK: trimmingSpaces

    @Test("trimmingSpaces removes leading and trailing spaces and tabs only")
    func trimmingSpaces() {
        #expect(" \t a b \t ".trimmingSpaces == "a b")
        #expect("".trimmingSpaces == "")
        #expect(" \t ".trimmingSpaces == "")
        #expect("\na\r".trimmingSpaces == "\na\r")
    }
}

@Suite("Base64")
struct Base64Tests {
    @Test(
        "RFC 4648 section 10 test vectors",
        arguments: [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy")]
    )
    func rfcVectors(_ input: String, _ expected: String) {
        #expect(Base64.encode(Array(input.utf8)) == expected)
        #expect(Base64.encode(input.utf8) == expected, "any collection of bytes")
    }

    @Test("the alphabet's last two characters are + and /")
    func plusAndSlash() {
        // 0xFB 0xFF = 111110 111111 1111(00): 62, 63, 60.
        #expect(Base64.encode([0xFB, 0xFF] as [UInt8]) == "+/8=")
        #expect(Base64.encode([0xFF, 0xFF, 0xFF] as [UInt8]) == "////")
        #expect(Base64.encode([0x00, 0x00, 0x00] as [UInt8]) == "AAAA")
    }

    @Test("RFC 6455 section 1.3: the example SHA-1 digest encodes to the example accept value")
    func rfcAcceptValue() {
        // CometCore has no SHA-1 (the gateway module hashes); the digest bytes are the RFC's own.
        let digest: [UInt8] = [
            0xB3, 0x7A, 0x4F, 0x2C, 0xC0, 0x62, 0x4F, 0x16, 0x90, 0xF6,
            0x46, 0x06, 0xCF, 0x38, 0x59, 0x45, 0xB2, 0xBE, 0xC4, 0xEA,
        ]
        #expect(Base64.encode(digest) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    @Test("the output length is 4 characters per started group of 3 bytes", arguments: 0..<40)
    func outputLength(_ count: Int) {
        let encoded = Base64.encode([UInt8](repeating: 0xA7, count: count))
        #expect(encoded.utf8.count == (count + 2) / 3 * 4)
        let padding = encoded.utf8.reversed().prefix { $0 == UInt8(ascii: "=") }.count
        #expect(padding == (3 - count % 3) % 3)
    }

    @Test("a slice of bytes encodes like an array of the same bytes")
    func slice() {
        let bytes: [UInt8] = Array("xxfoobar".utf8)
        #expect(Base64.encode(bytes[2...]) == "Zm9vYmFy")
    }
}
