import CometCore
import CometTestSupport
import Foundation
import Testing

/// Subscribers of every transport receive what a backend publishes with libcurl, in order.
@Suite("Live transports", .serialized)
struct LiveTransportTests {
    @Test("SSE delivers published messages in order, with event names and multi-line data")
    func sse() async throws {
        try await LiveGateway.withGateway { live in
            let client = try await RawHTTPClient.get(port: live.publicPort, "/sub/news", headers: ["Accept: text/event-stream"])
            #expect(await client.wait { $0.contains("retry: ") && $0.hasSuffix("\n\n") })
            #expect(client.text.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(client.text.contains("Content-Type: text/event-stream"))
            let ids = [
                try publish(live, "news", "first"),
                try publish(live, "news", "two\nlines\r\nand\rthree", headers: ["X-Comet-Event: update"]),
                try publish(live, "news?event=note", "third"),
            ]
            #expect(await client.wait { parseSSE(httpBody($0)).events.count == 3 })
            let parsed = parseSSE(httpBody(client.text))
            #expect(parsed.events.map(\.data) == ["first", "two\nlines\nand\nthree", "third"])
            #expect(parsed.events.map(\.event) == ["message", "update", "note"])
            #expect(parsed.events.map(\.lastEventID) == ids)
            #expect(parsed.retry == 3000)
            await client.close()
        }
    }

    @Test("?transport=sse works without an Accept header")
    func sseByParameter() async throws {
        try await LiveGateway.withGateway { live in
            let client = try await RawHTTPClient.get(port: live.publicPort, "/sub/a?transport=sse")
            #expect(await client.wait { $0.contains("\n\n") })
            try publish(live, "a", "x")
            #expect(await client.wait { parseSSE(httpBody($0)).events.map(\.data) == ["x"] })
            await client.close()
        }
    }

    @Test("XHR streaming delivers one JSON message object per line")
    func stream() async throws {
        try await LiveGateway.withGateway { live in
            let client = try await RawHTTPClient.get(port: live.publicPort, "/sub/s1?transport=stream")
            #expect(await client.wait { $0.contains("\"last_event_id\"") })
            #expect(client.text.contains("Content-Type: application/x-ndjson"))
            let payloads = ["plain", "quote \" and \\ backslash", "<script>alert(1)</script>", "üñíçødé \u{2028}"]
            var ids: [String] = []
            for payload in payloads {
                ids.append(try publish(live, "s1", payload, headers: ["Content-Type: text/plain"]))
            }
            #expect(await client.wait { (try? streamMessages($0).count) == payloads.count })
            let messages = try streamMessages(client.text)
            #expect(messages.map { $0["data"] as? String } == payloads)
            #expect(messages.map { $0["id"] as? String } == ids)
            #expect(messages.allSatisfy { $0["channel"] as? String == "s1" })
            #expect(messages.allSatisfy { $0["content_type"] as? String == "text/plain" })
            #expect(messages.allSatisfy { $0["event"] == nil })
            await client.close()
        }
    }

    @Test("A long poll is held until a message arrives, then answered with it and the cursor")
    func longPoll() async throws {
        try await LiveGateway.withGateway { live in
            // A cursor first, so that the held poll gets the message whether it is published before or after
            // the poll is registered.
            let cursor = try #require(try await poll(live, "/sub/lp?timeout=1").body["last_event_id"] as? String)
            let client = try await RawHTTPClient.get(port: live.publicPort, "/sub/lp?last_event_id=\(cursor)")
            let id = try publish(live, "lp", "hello")
            #expect(await client.wait { httpBody($0).hasSuffix("}") })
            let body = try jsonObject(httpBody(client.text))
            let messages = try #require(body["messages"] as? [[String: Any]])
            #expect(messages.count == 1)
            #expect(messages.first?["data"] as? String == "hello")
            #expect(body["last_event_id"] as? String == id)
            #expect(body["gap"] == nil)
            await client.close()
        }
    }

    @Test("A long poll times out with an empty list and a cursor that resumes without loss")
    func longPollTimeout() async throws {
        try await LiveGateway.withGateway { live in
            let first = try await poll(live, "/sub/quiet?timeout=1")
            #expect(first.status == 200)
            #expect((first.body["messages"] as? [Any])?.isEmpty == true)
            let cursor = try #require(first.body["last_event_id"] as? String)
            // Published between two polls: the next poll with the cursor gets it at once.
            try publish(live, "quiet", "between polls")
            let second = try await poll(live, "/sub/quiet?last_event_id=\(cursor)&timeout=1")
            let messages = try #require(second.body["messages"] as? [[String: Any]])
            #expect(messages.map { $0["data"] as? String } == ["between polls"])
            #expect(second.body["gap"] == nil)
        }
    }

    @Test("One connection subscribes to several channels; its cursor covers all of them")
    func multiChannel() async throws {
        try await LiveGateway.withGateway { live in
            let client = try await RawHTTPClient.get(port: live.publicPort, "/sub/b,a,b", headers: ["Accept: text/event-stream"])
            #expect(await client.wait { $0.contains("\n\n") })
            try publish(live, "a", "to a")
            try publish(live, "b", "to b")
            #expect(await client.wait { parseSSE(httpBody($0)).events.count == 2 })
            let parsed = parseSSE(httpBody(client.text))
            #expect(parsed.events.map(\.data) == ["to a", "to b"])
            await client.close()
            // Resume from the cursor after the first message: exactly the second one comes again.
            let cursor = parsed.events[0].lastEventID
            #expect(cursor.split(separator: ".").count == 2)
            let resumed = try await poll(live, "/sub/a,b?last_event_id=\(cursor)&timeout=1")
            let messages = try #require(resumed.body["messages"] as? [[String: Any]])
            #expect(messages.map { $0["data"] as? String } == ["to b"])
            #expect(resumed.body["last_event_id"] as? String == parsed.events[1].lastEventID)
        }
    }

    @Test("Idle streams get heartbeats: an SSE comment, an empty NDJSON line")
    func heartbeats() async throws {
        try await LiveGateway.withGateway(configure: { $0.transports.heartbeatInterval = 0.2 }) { live in
            let sse = try await RawHTTPClient.get(port: live.publicPort, "/sub/hb", headers: ["Accept: text/event-stream"])
            let stream = try await RawHTTPClient.get(port: live.publicPort, "/sub/hb?transport=stream")
            #expect(await sse.wait { httpBody($0).contains("\n:\n\n") })
            #expect(await stream.wait { httpBody($0).contains("}\n\n") })
            #expect(parseSSE(httpBody(sse.text)).events.isEmpty, "heartbeats dispatch no event")
            await sse.close()
            await stream.close()
        }
    }

    @Test("Cross-origin subscribers get CORS headers; a preflight is answered")
    func cors() async throws {
        try await LiveGateway.withGateway(configure: { $0.transports.allowedOrigins = ["http://app.example"] }) { live in
            let allowed = try await RawHTTPClient.get(port: live.publicPort, "/sub/c?transport=stream",
                                                      headers: ["Origin: http://app.example"])
            #expect(await allowed.wait { $0.contains("\r\n\r\n") })
            #expect(allowed.text.contains("Access-Control-Allow-Origin: http://app.example\r\n"))
            await allowed.close()
            let other = try await RawHTTPClient.get(port: live.publicPort, "/sub/c?transport=stream",
                                                    headers: ["Origin: http://evil.example"])
            #expect(await other.wait { $0.contains("\r\n\r\n") })
            #expect(!other.text.contains("Access-Control-Allow-Origin"))
            await other.close()
            let preflight = try await RawHTTPClient.connect(port: live.publicPort)
            try await preflight.send("OPTIONS /sub/c HTTP/1.1\r\nHost: x\r\nOrigin: http://app.example\r\nAccess-Control-Request-Headers: last-event-id\r\n\r\n")
            #expect(await preflight.wait { $0.contains("\r\n\r\n") })
            #expect(httpStatus(preflight.text) == 204)
            #expect(preflight.text.contains("Access-Control-Allow-Headers: Last-Event-ID"))
            await preflight.close()
        }
    }
}
