import CometCore
import CometTestSupport
import Foundation
import Testing

/// Hostile and excessive input gets a clear HTTP error, and nothing is lost for other clients.
@Suite("Live limits", .serialized)
struct LiveLimitsTests {
    /// Sends raw bytes and returns what the server answered before closing.
    private func exchange(_ live: LiveGateway, _ request: String) async throws -> String {
        let client = try await RawHTTPClient.connect(port: live.publicPort)
        try await client.send(request)
        #expect(await client.waitForClose(), "the server did not close: \(client.text)")
        return client.text
    }

    @Test("Malformed requests: 400; oversized target: 414; oversized headers: 431")
    func malformed() async throws {
        // `exchange` awaits inside #expect, which the macro cannot pair with `try`: unwrap first.
        try await LiveGateway.withGateway { live in
            let r52716 = try await self.exchange(live, "GARBAGE\r\n\r\n")
            #expect(httpStatus(r52716) == 400)
            let r23060 = try await self.exchange(live, "GET /sub/a HTTP/1.1\r\nContent-Length: x\r\n\r\n")
            #expect(httpStatus(r23060) == 400)
            let r99229 = try await self.exchange(live, "GET /sub/a HTTP/1.1\r\nBad Header\r\n\r\n")
            #expect(httpStatus(r99229) == 400)
            let r57946 = try await self.exchange(live, "\u{0}\u{1}\u{2}\r\n\r\n")
            #expect(httpStatus(r57946) == 400)
            let longTarget = "/sub/a?x=" + String(repeating: "y", count: 9000)
            let r78069 = try await self.exchange(live, "GET \(longTarget) HTTP/1.1\r\n\r\n")
            #expect(httpStatus(r78069) == 414)
            let bigHeader = "X-Big: " + String(repeating: "z", count: 17000)
            let r86981 = try await self.exchange(live, "GET /sub/a HTTP/1.1\r\n\(bigHeader)\r\n\r\n")
            #expect(httpStatus(r86981) == 431)
            let hugeHeader = "X-Huge: " + String(repeating: "z", count: 200_000)
            let r28781 = try await self.exchange(live, "GET /sub/a HTTP/1.1\r\n\(hugeHeader)\r\n\r\n")
            #expect(httpStatus(r28781) == 431)
            let manyHeaders = (0..<300).map { "X-H\($0): v\r\n" }.joined()
            let r26378 = try await self.exchange(live, "GET /sub/a HTTP/1.1\r\n\(manyHeaders)\r\n")
            #expect(httpStatus(r26378) == 431)
        }
    }

    @Test("Expect: 100-continue is answered before the body is sent; other expectations get 417")
    func expectContinue() async throws {
        try await LiveGateway.withGateway { live in
            let client = try await RawHTTPClient.connect(port: live.publishPort)
            try await client.send("POST /pub/e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
            #expect(await client.wait { $0 == "HTTP/1.1 100 Continue\r\n\r\n" })
            try await client.send("hello")
            #expect(await client.wait { $0.contains("HTTP/1.1 202 Accepted") && $0.hasSuffix("}") })
            await client.close()
            // libcurl sends Expect: 100-continue for larger bodies, as PHP backends do.
            let large = Curl.post("\(live.publishURL)/pub/e", String(repeating: "L", count: 50_000))
            #expect(large.status == 202)
            let other = try await RawHTTPClient.connect(port: live.publishPort)
            try await other.send("POST /pub/e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: teapot\r\n\r\n")
            #expect(await other.waitForClose())
            #expect(httpStatus(other.text) == 417)
        }
    }

    @Test("Bad subscribe parameters: 400 with a short reason")
    func badParameters() async throws {
        try await LiveGateway.withGateway { live in
            let cases: [(String, String)] = [
                ("/sub/a?transport=carrier-pigeon", "unknown transport"),
                ("/sub/a?timeout=0", "timeout"),
                ("/sub/a?timeout=31", "timeout"),
                ("/sub/a?timeout=abc", "timeout"),
                ("/sub/bad%20name", "channel name"),
                ("/sub/%ZZ", "percent"),
                ("/sub/%FF", "UTF-8"),
                ("/sub/", "no channel"),
                ("/sub/a,,b", "empty channel"),
                ("/sub/" + (0..<17).map { "c\($0)" }.joined(separator: ","), "too many channels"),
                ("/sub/a?last_event_id=1..2", "last_event_id"),
            ]
            for (path, reason) in cases {
                let client = try await RawHTTPClient.get(port: live.publicPort, path)
                #expect(await client.wait { $0.contains("\r\n\r\n") && $0.hasSuffix("\n") })
                #expect(httpStatus(client.text) == 400, "\(path)")
                #expect(httpBody(client.text).contains(reason), "\(path): \(httpBody(client.text))")
                await client.close()
            }
            let wrongMethod = Curl.request("POST", "\(live.publicURL)/sub/a")
            #expect(wrongMethod.status == 405)
            #expect(Curl.request("GET", "\(live.publicURL)/nothing-here").status == 404)
        }
    }

    @Test("Past max_connections a request gets 503 with Retry-After; the open connections keep working")
    func tooManyConnections() async throws {
        try await LiveGateway.withGateway(configure: { $0.server.maxConnections = 2 }) { live in
            let first = try await RawHTTPClient.get(port: live.publicPort, "/sub/m?transport=stream")
            let second = try await RawHTTPClient.get(port: live.publicPort, "/sub/m?transport=stream")
            #expect(await first.wait { $0.contains("last_event_id") })
            #expect(await second.wait { $0.contains("last_event_id") })
            let third = try await RawHTTPClient.get(port: live.publicPort, "/sub/m?transport=stream")
            #expect(await third.waitForClose())
            #expect(httpStatus(third.text) == 503)
            #expect(third.text.contains("Retry-After: "))
            try publish(live, "m", "still served")
            #expect(await first.wait { $0.contains("still served") })
            #expect(await second.wait { $0.contains("still served") })
            await first.close()
            await second.close()
        }
    }

    @Test("Subscribers that vanish (FIN or RST) are unregistered: nothing stays behind")
    func vanishingSubscribers() async throws {
        try await LiveGateway.withGateway { live in
            var clients: [RawHTTPClient] = []
            for transport in ["sse", "stream", "poll"] {
                for _ in 0..<10 {
                    clients.append(try await RawHTTPClient.get(port: live.publicPort, "/sub/gone?transport=\(transport)"))
                }
            }
            #expect(try await waitForSubscribers(live, "gone", 30))
            for (index, client) in clients.enumerated() {
                if index % 2 == 0 { await client.reset() } else { await client.close() }
            }
            var remaining = -1
            for _ in 0..<200 where remaining != 0 {
                remaining = try jsonObject(Curl.request("GET", "\(live.publicURL)/healthz").body)["subscribers"] as? Int ?? -1
                if remaining != 0 { try await Task.sleep(for: .milliseconds(10)) }
            }
            #expect(remaining == 0)
            #expect(Curl.request("GET", "\(live.publishURL)/pub/gone").status == 404)
        }
    }

    @Test("Headers that never finish are answered 408 and closed after request_timeout")
    func slowHeaders() async throws {
        try await LiveGateway.withGateway(configure: { $0.limits.requestTimeout = 0.3 }) { live in
            let client = try await RawHTTPClient.connect(port: live.publicPort)
            try await client.send("GET /sub/a HTTP/1.1\r\nX-Slow: ")
            #expect(await client.waitForClose())
            #expect(httpStatus(client.text) == 408)
        }
    }

    private static func hasMessages(_ count: Int) -> @Sendable (String) -> Bool {
        { text in text.components(separatedBy: "\"data\":\"p").count - 1 == count }
    }

    @Test("A subscriber that stops reading is closed and counted; the others get every message")
    func slowConsumer() async throws {
        try await LiveGateway.withGateway(configure: { $0.limits.maxOutboundBytes = 64 * 1024 }) { live in
            let slow = try await nonReadingStream(live, "flood")
            let healthy = try await RawHTTPClient.get(port: live.publicPort, "/sub/flood?transport=stream")
            #expect(await healthy.wait { $0.contains("last_event_id") })
            let payload = String(repeating: "p", count: 32 * 1024)
            var published = 0
            // Bounded: enough to overflow kernel buffers plus the 64 KiB outbound bound.
            for _ in 0..<400 {
                try publish(live, "flood", payload)
                published += 1
                let health = try jsonObject(Curl.request("GET", "\(live.publicURL)/healthz").body)
                if health["slow_consumer_closes"] as? Int == 1 { break }
            }
            let health = try jsonObject(Curl.request("GET", "\(live.publicURL)/healthz").body)
            #expect(health["slow_consumer_closes"] as? Int == 1)
            let allArrived = await healthy.wait(timeout: .seconds(30), until: Self.hasMessages(published))
            #expect(allArrived)
            try await slow.setAutoRead(true)
            #expect(await slow.waitForClose())
            await healthy.close()
        }
    }
}
