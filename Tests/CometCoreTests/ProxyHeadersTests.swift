import CometCore
import Testing

@Suite("ProxyHeaders")
struct ProxyHeadersTests {
    private let untrusted = ProxyHeaders.Client(address: "10.0.0.7", scheme: "http", trusted: false)
    private let trusted = ProxyHeaders.Client(address: "127.0.0.1", scheme: "https", trusted: true)

    private func value(_ headers: [(String, String)], _ name: String) -> [String] {
        headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1)
    }

    @Test("Hop-by-hop headers, those Connection names and a client's Grip-* never reach the upstream")
    func requestStripped() {
        let headers = ProxyHeaders.request(
            [("Host", "app.example"), ("Connection", "keep-alive, X-Secret"), ("X-Secret", "s"), ("Keep-Alive", "5"),
             ("TE", "trailers"), ("Trailer", "X"), ("Upgrade", "h2c"), ("Proxy-Authorization", "Basic x"),
             ("Proxy-Connection", "close"), ("Grip-Sig", "forged"), ("grip-last", "c; last-id=1"), ("Cookie", "a=1"),
             ("Accept", "*/*")],
            client: self.untrusted, chunkedBody: false)
        let names = Set(headers.map { $0.0.lowercased() })
        for gone in ["connection", "x-secret", "keep-alive", "te", "trailer", "upgrade", "proxy-authorization",
                     "proxy-connection", "grip-sig", "grip-last", "transfer-encoding"] {
            #expect(!names.contains(gone), "\(gone) is dropped")
        }
        #expect(self.value(headers, "host") == ["app.example"])
        #expect(self.value(headers, "cookie") == ["a=1"])
        #expect(self.value(headers, "accept") == ["*/*"])
    }

    @Test("From an untrusted peer, forwarding headers are replaced; from a trusted one, kept and added to")
    func forwarding() {
        let sent: [(String, String)] = [("Host", "app.example:8080"), ("X-Forwarded-For", "6.6.6.6"),
                                        ("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "evil.example"),
                                        ("Forwarded", "for=6.6.6.6")]
        let replaced = ProxyHeaders.request(sent, client: self.untrusted, chunkedBody: false)
        #expect(self.value(replaced, "x-forwarded-for") == ["10.0.0.7"])
        #expect(self.value(replaced, "x-forwarded-proto") == ["http"])
        #expect(self.value(replaced, "x-forwarded-host") == ["app.example:8080"])
        #expect(self.value(replaced, "forwarded") == [#"for=10.0.0.7;host="app.example:8080";proto=http"#])

        let kept = ProxyHeaders.request(sent, client: self.trusted, chunkedBody: false)
        #expect(self.value(kept, "x-forwarded-for") == ["6.6.6.6, 127.0.0.1"])
        #expect(self.value(kept, "x-forwarded-proto") == ["https"])
        #expect(self.value(kept, "x-forwarded-host") == ["evil.example"])
        #expect(self.value(kept, "forwarded") == [#"for=6.6.6.6, for=127.0.0.1;host="app.example:8080";proto=https"#])
    }

    @Test("An IPv6 peer is quoted and bracketed in Forwarded")
    func ipv6() {
        let client = ProxyHeaders.Client(address: "::1", scheme: "http", trusted: false)
        let headers = ProxyHeaders.request([("Host", "h")], client: client, chunkedBody: false)
        #expect(self.value(headers, "forwarded") == [#"for="[::1]";host=h;proto=http"#])
    }

    @Test("A chunked client body goes up chunked; a tunnelled upgrade keeps Upgrade and Connection")
    func framingAndUpgrade() {
        let chunked = ProxyHeaders.request([("Host", "h"), ("Transfer-Encoding", "chunked")], client: self.untrusted,
                                           chunkedBody: true)
        #expect(self.value(chunked, "transfer-encoding") == ["chunked"])
        let upgrade = ProxyHeaders.request([("Host", "h"), ("Connection", "Upgrade"), ("Upgrade", "websocket")],
                                           client: self.untrusted, chunkedBody: false, upgrade: true)
        #expect(self.value(upgrade, "upgrade") == ["websocket"])
        #expect(self.value(upgrade, "connection") == ["upgrade"])
    }

    @Test("The upstream's hop-by-hop, framing and Grip-* headers do not reach the client")
    func responseStripped() {
        let headers = ProxyHeaders.response(
            [("Content-Type", "text/html"), ("Content-Length", "5"), ("Transfer-Encoding", "chunked"),
             ("Connection", "close, X-Internal"), ("X-Internal", "1"), ("Keep-Alive", "timeout=5"),
             ("Grip-Hold", "response"), ("Grip-Channel", "c"), ("Set-Cookie", "s=1"), ("Set-Cookie", "t=2")])
        #expect(headers.map(\.0) == ["Content-Type", "Set-Cookie", "Set-Cookie"])
    }
}

@Suite("Proxy configuration")
struct ProxyConfigurationTests {
    @Test("[[proxy.route]] tables are read in order, with their defaults")
    func routes() throws {
        let configuration = try ConfigFileParser.parse("""
            [proxy]
            connect_timeout = 2
            response_timeout = 10.5
            trusted_proxies = ["127.0.0.1", "::1"]
            [[proxy.route]]
            host = "API.example"
            path_prefix = "/api"
            upstream = "http://127.0.0.1:9000"
            [[proxy.route]]
            upstream = "http://[::1]:3000/"
            """, file: "t.conf")
        let proxy = configuration.proxy
        #expect(proxy.connectTimeout == 2)
        #expect(proxy.responseTimeout == 10.5)
        #expect(proxy.trustedProxies == ["127.0.0.1", "::1"])
        #expect(proxy.routes.count == 2)
        #expect(proxy.routes[0] == .init(host: "api.example", pathPrefix: "/api",
                                         upstream: .init(host: "127.0.0.1", port: 9000)))
        #expect(proxy.routes[1] == .init(upstream: .init(host: "::1", port: 3000)))
        #expect(proxy.route(host: "api.example:8080", path: "/api/users")?.upstream.port == 9000)
        #expect(proxy.route(host: "api.example", path: "/apiary")?.upstream.port == 3000, "a prefix ends at a /")
        #expect(proxy.route(host: "other.example", path: "/api/users")?.upstream.port == 3000)
    }

    @Test("Bad routes and trusted proxies are refused with the key at fault")
    func refusals() {
        let cases: [(String, String)] = [
            ("[[proxy.route]]\npath_prefix = \"/\"", "needs upstream"),
            ("[[proxy.route]]\nupstream = \"https://a:1\"", "https upstreams are not supported"),
            ("[[proxy.route]]\nupstream = \"http://a:1/path\"", "without a path"),
            ("[[proxy.route]]\nupstream = \"http://a:0\"", "1 to 65535"),
            ("[[proxy.route]]\nupstream = \"http://a:1\"\npath_prefix = \"app\"", "starting with /"),
            ("[[proxy.route]]\nupstream = \"http://a:1\"\nport = 3", "unknown key 'port'"),
            ("[proxy]\ntrusted_proxies = [\"10.0.0.0/8\"]", "not an IP address"),
            ("[proxy]\nroute = 3", "must be tables"),
        ]
        for (text, expected) in cases {
            do {
                _ = try ConfigFileParser.parse(text, file: "t.conf")
                Issue.record("accepted: \(text)")
            } catch {
                #expect("\(error)".contains(expected), "\(text) -> \(error)")
            }
        }
    }
}
