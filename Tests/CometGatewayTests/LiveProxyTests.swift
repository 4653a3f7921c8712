import CometCore
import CometTestSupport
import Crypto
import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import CometGateway

/// The gateway in front of an application (`[[proxy.route]]`): real sockets on loopback to a real upstream.
@Suite("Live reverse proxy", .serialized)
struct LiveProxyTests {
    /// A gateway whose every path (or `prefix`) goes to `upstream`.
    private func withProxy<T: Sendable>(
        to upstream: TestUpstream, prefix: String = "/", host: String? = nil,
        configure: @escaping @Sendable (inout GatewayConfiguration) -> Void = { _ in },
        _ body: (LiveGateway) async throws -> T
    ) async throws -> T {
        try await LiveGateway.withGateway(configure: { configuration in
            configuration.proxy.routes = [
                .init(host: host, pathPrefix: prefix, upstream: .init(host: "127.0.0.1", port: upstream.port))
            ]
            configuration.proxy.connectTimeout = 1
            configuration.proxy.responseTimeout = 1
            configure(&configuration)
        }, body)
    }

    /// The head and body of the first response in `text`, once complete (by its Content-Length or last chunk).
    private static func complete(_ text: String) -> Bool {
        guard let end = text.range(of: "\r\n\r\n") else { return false }
        let head = text[..<end.lowerBound].lowercased()
        let body = text[end.upperBound...]
        if let line = head.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
           let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) {
            return body.utf8.count >= length
        }
        return body.hasSuffix("0\r\n\r\n")
    }

    @Test("A request goes to the app with its headers rewritten; the app's answer comes back without its Grip-* headers")
    func passThrough() async throws {
        let upstream = try await TestUpstream.start { request in
            .init(headers: [("Content-Type", "text/plain"), ("X-App", "yes"), ("Grip-Status", "404"),
                            ("Connection", "X-Internal"), ("X-Internal", "1")],
                  text: "hello from \(request.uri)")
        }
        try await self.withProxy(to: upstream) { live in
            let client = try await RawHTTPClient.get(
                port: live.publicPort, "/page?x=1",
                headers: ["X-Forwarded-For: 6.6.6.6", "Grip-Sig: forged", "Connection: keep-alive, X-Secret",
                          "X-Secret: s", "Cookie: session=abc"])
            #expect(await client.wait(until: Self.complete))
            let text = client.text
            #expect(text.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(text.contains("X-App: yes\r\n"))
            #expect(text.hasSuffix("hello from /page?x=1"))
            #expect(!text.lowercased().contains("grip-status"), "Grip-* headers are stripped (no hold: no instruction)")
            #expect(!text.lowercased().contains("x-internal"))
            await client.close()
        }
        let request = try #require(upstream.requests.first)
        #expect(request.uri == "/page?x=1")
        #expect(request.values("x-forwarded-for") == ["127.0.0.1"], "an untrusted peer's X-Forwarded-For is replaced")
        #expect(request.values("x-forwarded-proto") == ["http"])
        #expect(request.values("x-forwarded-host") == ["127.0.0.1"])
        #expect(request.values("forwarded") == ["for=127.0.0.1;host=127.0.0.1;proto=http"])
        #expect(request.values("host") == ["127.0.0.1"])
        #expect(request.values("cookie") == ["session=abc"])
        #expect(request.values("grip-sig").isEmpty)
        #expect(request.values("x-secret").isEmpty)
        await upstream.stop()
    }

    @Test("From a trusted proxy, X-Forwarded-For is added to")
    func trustedProxy() async throws {
        let upstream = try await TestUpstream.start { _ in .init(text: "ok") }
        try await self.withProxy(to: upstream, configure: { $0.proxy.trustedProxies = ["127.0.0.1"] }) { live in
            let client = try await RawHTTPClient.get(port: live.publicPort, "/", headers: ["X-Forwarded-For: 203.0.113.9"])
            #expect(await client.wait(until: Self.complete))
            await client.close()
        }
        #expect(upstream.requests.first?.values("x-forwarded-for") == ["203.0.113.9, 127.0.0.1"])
        await upstream.stop()
    }

    /// `count` bytes of a pattern that a shifted or dropped part would break (cheap to make in a debug build). Printable
    /// ASCII: decoding invalid UTF-8 as text makes swift-testing capture a backtrace per repaired sequence.
    private static func pattern(_ count: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            for index in 0..<count { buffer[index] = UInt8(truncatingIfNeeded: 32 + index % 89) }
            initialized = count
        }
    }

    @Test("A 2 MiB upload and a chunked one reach the app whole; a 4 MiB chunked answer reaches the client whole")
    func largeBodies() async throws {
        let big = Self.pattern(4 << 20)
        let upstream = try await TestUpstream.start { request in
            request.uri == "/download"
                ? .init(headers: [("Content-Type", "application/octet-stream")], body: big, chunkSize: 100_000)
                : .init(text: "got \(request.body.count) bytes, \(request.body == Self.pattern(request.body.count) ? "intact" : "damaged")")
        }
        try await self.withProxy(to: upstream) { live in
            let upload = Array(big.prefix(2 << 20))
            let response = Curl.request("POST", "http://127.0.0.1:\(live.publicPort)/upload", body: upload, timeout: 30)
            #expect(response.status == 200)
            #expect(response.body == "got \(upload.count) bytes, intact")

            let chunked = try await RawHTTPClient.connect(port: live.publicPort)
            try await chunked.send("POST /chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
            #expect(await chunked.wait(until: Self.complete))
            #expect(chunked.text.contains("got 11 bytes"))
            await chunked.close()

            let download = Curl.request("GET", "http://127.0.0.1:\(live.publicPort)/download", timeout: 30)
            #expect(download.status == 200)
            #expect(download.bytes == big)
        }
        #expect(upstream.requests.first { $0.uri == "/chunked" }?.body == Array("hello world".utf8))
        #expect(upstream.requests.first { $0.uri == "/upload" }?.values("content-length") == ["\(2 << 20)"])
        await upstream.stop()
    }

    @Test("An HTTP/1.0 client gets a length-less answer that ends with the connection; Connection: close is honoured")
    func closingClients() async throws {
        let upstream = try await TestUpstream.start { _ in .init(body: Array("streamed without a length".utf8), chunkSize: 5) }
        try await self.withProxy(to: upstream) { live in
            let old = try await RawHTTPClient.connect(port: live.publicPort)
            try await old.send("GET /a HTTP/1.0\r\nHost: a\r\n\r\n")
            #expect(await old.waitForClose(timeout: .seconds(5)))
            #expect(old.text.hasSuffix("\r\n\r\nstreamed without a length"))
            #expect(!old.text.lowercased().contains("transfer-encoding"))
            let closing = try await RawHTTPClient.connect(port: live.publicPort)
            try await closing.send("GET /b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            #expect(await closing.waitForClose(timeout: .seconds(5)))
            #expect(closing.text.contains("Connection: close\r\n"))
            #expect(closing.text.hasSuffix("0\r\n\r\n"))
        }
        await upstream.stop()
    }

    @Test("Keep-alive: pipelined requests on one client connection are answered in order")
    func keepAlive() async throws {
        let upstream = try await TestUpstream.start { request in .init(text: "answer \(request.uri)") }
        try await self.withProxy(to: upstream) { live in
            let client = try await RawHTTPClient.connect(port: live.publicPort)
            try await client.send("GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
            #expect(await client.wait { $0.contains("answer /2") })
            let text = client.text
            let first = try #require(text.range(of: "answer /1"))
            let second = try #require(text.range(of: "answer /2"))
            #expect(first.lowerBound < second.lowerBound)
            await client.close()
        }
        await upstream.stop()
    }

    @Test("Upstream down: 502; upstream hung: 504 after proxy.response_timeout; the gateway's own subscribers are unaffected")
    func failures() async throws {
        let upstream = try await TestUpstream.start { request in
            request.uri == "/hang" ? .init(hang: true) : .init(text: "ok")
        }
        // Port 1 on loopback: nothing listens there, so a connection is refused (a stopped test upstream's port could
        // be taken by another test's server meanwhile).
        let configure: @Sendable (inout GatewayConfiguration) -> Void = { configuration in
            configuration.proxy.routes.insert(
                .init(host: nil, pathPrefix: "/down", upstream: .init(host: "127.0.0.1", port: 1)), at: 0)
        }
        try await self.withProxy(to: upstream, configure: configure) { live in
            let stream = try await RawHTTPClient.get(port: live.publicPort, "/sub/news?transport=stream")
            #expect(await stream.wait { $0.contains("last_event_id") })

            let hung = try await RawHTTPClient.get(port: live.publicPort, "/hang")
            #expect(Curl.post("\(live.publishURL)/pub/news", "while the app hangs").status == 201)
            #expect(await stream.wait { $0.contains("while the app hangs") })
            #expect(await hung.wait(timeout: .seconds(5), until: Self.complete))
            #expect(hung.text.hasPrefix("HTTP/1.1 504 Gateway Timeout"))
            #expect(hung.text.contains("upstream response timed out"))
            await hung.close()

            await upstream.stop()
            let down = Curl.request("GET", "http://127.0.0.1:\(live.publicPort)/down/anything")
            #expect(down.status == 502)
            #expect(down.body.contains("upstream unavailable"))
            await stream.close()
        }
    }

    @Test("Routes by host and path prefix; the gateway's own paths and /comet.js never go to the app")
    func routing() async throws {
        let upstream = try await TestUpstream.start { request in .init(text: "app \(request.uri)") }
        try await self.withProxy(to: upstream, prefix: "/app", host: "shop.example") { live in
            let base = "http://127.0.0.1:\(live.publicPort)"
            #expect(Curl.request("GET", "\(base)/app/cart", headers: ["Host: shop.example"]).body == "app /app/cart")
            #expect(Curl.request("GET", "\(base)/app", headers: ["Host: SHOP.example:8080"]).body == "app /app")
            #expect(Curl.request("GET", "\(base)/application", headers: ["Host: shop.example"]).status == 404)
            #expect(Curl.request("GET", "\(base)/app/cart", headers: ["Host: other.example"]).status == 404)
            #expect(Curl.request("GET", "\(base)/comet.js", headers: ["Host: shop.example"]).body.contains("Comet"))
            #expect(Curl.request("GET", "\(base)/healthz", headers: ["Host: shop.example"]).body.contains("\"status\""))
        }
        #expect(upstream.requests.map(\.uri) == ["/app/cart", "/app"])
        await upstream.stop()
    }

    /// An application that accepts any upgrade with a `101` and then echoes every byte in upper case.
    private final class UpgradeEcho: ChannelInboundHandler, @unchecked Sendable {  // confined to its channel's loop
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        var upgraded = false
        var head = ""

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = self.unwrapInboundIn(data)
            guard self.upgraded else {
                self.head += bytes.readString(length: bytes.readableBytes) ?? ""
                guard let end = self.head.range(of: "\r\n\r\n") else { return }
                self.upgraded = true
                let response = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\nX-Seen-Upgrade: "
                    + (self.head.lowercased().contains("upgrade: echo") ? "yes" : "no") + "\r\n\r\n"
                context.write(self.wrapOutboundOut(ByteBuffer(string: response)), promise: nil)
                let rest = String(self.head[end.upperBound...])
                if !rest.isEmpty { context.write(self.wrapOutboundOut(ByteBuffer(string: rest.uppercased())), promise: nil) }
                context.flush()
                return
            }
            let text = bytes.readString(length: bytes.readableBytes) ?? ""
            context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: text.uppercased())), promise: nil)
        }
    }

    @Test("An upgrade that is not the gateway's own is tunnelled to the application, bytes both ways")
    func upgradeTunnel() async throws {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(UpgradeEcho()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = server.localAddress!.port!
        try await LiveGateway.withGateway(configure: { configuration in
            configuration.proxy.routes = [.init(pathPrefix: "/live", upstream: .init(host: "127.0.0.1", port: port))]
        }) { live in
            let client = try await RawHTTPClient.connect(port: live.publicPort)
            try await client.send("GET /live/socket HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nearly ")
            #expect(await client.wait { $0.contains("\r\n\r\nEARLY ") })
            #expect(client.text.hasPrefix("HTTP/1.1 101 Switching Protocols\r\n"))
            #expect(client.text.contains("Upgrade: echo\r\n"))
            #expect(client.text.contains("X-Seen-Upgrade: yes\r\n"), "the upstream got the Upgrade header")
            try await client.send("hello tunnel")
            #expect(await client.wait { $0.hasSuffix("HELLO TUNNEL") })
            await client.close()
        }
        try await server.close()
    }

    /// Base64url (no padding) decoded.
    private static func base64URL(_ text: Substring) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64)
    }

    @Test("With proxy.grip_signature_key, the app gets a Grip-Sig JWT (HS256) it can verify, even when the client sent one")
    func gripSignature() async throws {
        let upstream = try await TestUpstream.start { _ in .init(text: "ok") }
        let before = Date().timeIntervalSince1970
        try await self.withProxy(to: upstream, configure: { $0.proxy.gripSignatureKey = "s3cret" }) { live in
            let client = try await RawHTTPClient.get(port: live.publicPort, "/", headers: ["Grip-Sig: forged.by.client"])
            #expect(await client.wait(until: Self.complete))
            await client.close()
        }
        let tokens = try #require(upstream.requests.first).values("grip-sig")
        #expect(tokens.count == 1, "only the gateway's")
        let parts = try #require(tokens.first).split(separator: ".")
        try #require(parts.count == 3)
        let header = try JSONSerialization.jsonObject(with: try #require(Self.base64URL(parts[0]))) as? [String: Any]
        let claims = try JSONSerialization.jsonObject(with: try #require(Self.base64URL(parts[1]))) as? [String: Any]
        #expect(header?["alg"] as? String == "HS256")
        #expect(claims?["iss"] as? String == "comet-gateway")
        let exp = try #require(claims?["exp"] as? Double)
        #expect(exp > before + 3000 && exp < before + 3700, "valid for an hour")
        let expected = HMAC<SHA256>.authenticationCode(for: Data((parts[0] + "." + parts[1]).utf8),
                                                        using: SymmetricKey(data: Data("s3cret".utf8)))
        #expect(Self.base64URL(parts[2]) == Data(expected), "signed with the configured key")
        await upstream.stop()
    }
}
