import CometCore
import CometTestSupport
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import Testing

@testable import CometGateway

/// GRIP: the application behind the gateway answers with `Grip-Hold` (or an instruct body) and the gateway holds the
/// client's request on channels; publishes through `/pub/` and Pushpin's `/publish/` reach the holds. Real sockets on
/// loopback, a real upstream, libcurl for publishing.
@Suite("Live GRIP holds", .serialized)
struct LiveGripTests {
    private func withGrip<T: Sendable>(
        _ upstream: TestUpstream,
        configure: @escaping @Sendable (inout GatewayConfiguration) -> Void = { _ in },
        _ body: (LiveGateway) async throws -> T
    ) async throws -> T {
        try await LiveGateway.withGateway(configure: { configuration in
            configuration.proxy.routes = [.init(host: nil, pathPrefix: "/", upstream: .init(host: "127.0.0.1", port: upstream.port))]
            configuration.proxy.responseTimeout = 5
            configure(&configuration)
        }, body)
    }

    private func epcp(_ live: LiveGateway, _ json: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let response = Curl.post("\(live.publishURL)/publish/", json, headers: ["Content-Type: application/json"])
        #expect(response.status == 200, "publish answered \(response.status): \(response.body)", sourceLocation: sourceLocation)
    }

    /// The complete first response in `text` (by Content-Length).
    private static func completeResponse(_ text: String) -> Bool {
        guard let end = text.range(of: "\r\n\r\n"),
              let line = text[..<end.lowerBound].lowercased().split(separator: "\r\n")
                .first(where: { $0.hasPrefix("content-length:") }),
              let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces))
        else { return false }
        return text[end.upperBound...].utf8.count >= length
    }

    @Test("A stream hold: the app's start, then each message's http-stream content (or /pub/ payload) as a chunk; close ends it")
    func streamHold() async throws {
        let upstream = try await TestUpstream.start { _ in
            .init(headers: [("Grip-Hold", "stream"), ("Grip-Channel", "news"), ("Content-Type", "text/plain"),
                            ("X-App", "1")], text: "start\n")
        }
        try await self.withGrip(upstream) { live in
            let sse = try await RawHTTPClient.get(port: live.publicPort, "/sub/news?transport=stream")
            #expect(await sse.wait { $0.contains("last_event_id") })
            let client = try await RawHTTPClient.get(port: live.publicPort, "/live")
            #expect(await client.wait { $0.contains("start\n") })
            #expect(client.text.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(client.text.contains("Transfer-Encoding: chunked\r\n"))
            #expect(client.text.contains("X-App: 1\r\n"))
            #expect(!client.text.lowercased().contains("grip-"))

            try publish(live, "news", "from pub\n")
            #expect(await client.wait { $0.hasSuffix("9\r\nfrom pub\n\r\n") })
            self.epcp(live, #"{"items": [{"channel": "news", "id": "a", "formats": {"http-stream": {"content": "from epcp\n"}}}]}"#)
            #expect(await client.wait { $0.hasSuffix("a\r\nfrom epcp\n\r\n") })
            // A message for response holds only: not appended.
            self.epcp(live, #"{"items": [{"channel": "news", "formats": {"http-response": {"body": "not for streams"}}}]}"#)
            self.epcp(live, #"{"items": [{"channel": "news", "formats": {"http-stream": {"content": "last\n"}}}, {"channel": "news", "formats": {"http-stream": {"action": "close"}}}]}"#)
            #expect(await client.wait { $0.hasSuffix("5\r\nlast\n\r\n0\r\n\r\n") })
            #expect(!client.text.contains("not for streams"))
            #expect(await client.waitForClose() || !client.text.isEmpty)

            // The gateway's own subscribers of the channel got every message (the close is not one).
            #expect(await sse.wait { $0.contains("last\\n") })
            let lines = sse.text.split(separator: "\n").filter { $0.contains("\"data\"") }
            #expect(lines.count == 4, "\(lines)")
            #expect(sse.text.contains("not for streams"))
            await sse.close()
            await client.close()
        }
        await upstream.stop()
    }

    @Test("A response hold: answered by the first message's http-response, on a connection kept alive; then a timeout sends the app's response")
    func responseHold() async throws {
        let upstream = try await TestUpstream.start { _ in
            .init(headers: [("Grip-Hold", "response"), ("Grip-Channel", "ev"), ("Grip-Timeout", "1"),
                            ("Content-Type", "application/json")], text: "{\"timeout\":true}")
        }
        try await self.withGrip(upstream) { live in
            let client = try await RawHTTPClient.get(port: live.publicPort, "/wait")
            #expect(try await waitForTotalSubscribers(live, 1))
            self.epcp(live, #"{"items": [{"channel": "ev", "formats": {"http-response": {"code": 201, "reason": "Here", "headers": {"Content-Type": "text/x", "X-Pub": "1"}, "body": "got it"}}}]}"#)
            #expect(await client.wait(until: Self.completeResponse))
            #expect(client.text.hasPrefix("HTTP/1.1 201 Here\r\n"))
            #expect(client.text.contains("X-Pub: 1\r\n") && client.text.contains("Content-Type: text/x\r\n"))
            #expect(client.text.hasSuffix("\r\n\r\ngot it"))
            #expect(!client.text.contains("Connection: close"))

            // The same connection: held again; a /pub/ message answers 200 with its payload and Content-Type.
            client.clearReceived()
            try await client.send("GET /wait HTTP/1.1\r\nHost: a\r\n\r\n")
            #expect(try await waitForTotalSubscribers(live, 1))
            try publish(live, "ev", "plain", headers: ["Content-Type: text/plain"])
            #expect(await client.wait(until: Self.completeResponse))
            #expect(client.text.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(client.text.contains("Content-Type: text/plain\r\n"))
            #expect(client.text.hasSuffix("\r\n\r\nplain"))

            // Again, and nothing comes: after Grip-Timeout the app's own response.
            client.clearReceived()
            try await client.send("GET /wait HTTP/1.1\r\nHost: a\r\n\r\n")
            #expect(await client.wait(until: Self.completeResponse))
            #expect(client.text.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(client.text.hasSuffix("{\"timeout\":true}"))
            #expect(try await waitForTotalSubscribers(live, 0))
            await client.close()
        }
        #expect(upstream.requests.count == 3)
        await upstream.stop()
    }

    @Test("prev-id: what was published after the id the app names is sent at once (publisher ids and gateway ids)")
    func prevID() async throws {
        let prevID = NIOLockedValueBox("")
        let upstream = try await TestUpstream.start { request in
            let mode = request.uri.hasPrefix("/stream") ? "stream" : "response"
            return .init(headers: [("Grip-Hold", mode), ("Grip-Channel", "c; prev-id=\(prevID.withLockedValue { $0 })")],
                         text: "")
        }
        try await self.withGrip(upstream) { live in
            self.epcp(live, #"{"items": [{"channel": "c", "id": "1", "formats": {"http-response": {"body": "one"}, "http-stream": {"content": "one\n"}}}]}"#)
            self.epcp(live, #"{"items": [{"channel": "c", "id": "2", "prev-id": "1", "formats": {"http-response": {"body": "two"}, "http-stream": {"content": "two\n"}}}]}"#)
            prevID.withLockedValue { $0 = "1" }
            let response = Curl.request("GET", "\(live.publicURL)/poll")
            #expect(response.status == 200 && response.body == "two")

            let stream = try await RawHTTPClient.get(port: live.publicPort, "/stream")
            #expect(await stream.wait { $0.contains("4\r\ntwo\n\r\n") })
            #expect(!stream.text.contains("one"))
            await stream.close()
            // Gone from the hub before the held poll below is counted (else "five" may come before it is held).
            #expect(try await waitForTotalSubscribers(live, 0))

            // The gateway's own id (a /pub/ receipt's) works too.
            let id = try publish(live, "c", "three")
            try publish(live, "c", "four")
            prevID.withLockedValue { $0 = id }
            #expect(Curl.request("GET", "\(live.publicURL)/poll").body == "four")

            // An id the history does not hold: the hold waits for the next message.
            prevID.withLockedValue { $0 = "unknown" }
            let waiting = try await RawHTTPClient.get(port: live.publicPort, "/poll")
            #expect(try await waitForTotalSubscribers(live, 1))
            try publish(live, "c", "five")
            #expect(await waiting.wait(until: Self.completeResponse))
            #expect(waiting.text.hasSuffix("five"))
            await waiting.close()
        }
        await upstream.stop()
    }

    @Test("An instruct body: hold, keep-alive and the start of the stream come from the document")
    func instructBody() async throws {
        let upstream = try await TestUpstream.start { _ in
            .init(headers: [("Content-Type", "application/grip-instruct")], text: """
                {"hold": {"mode": "stream", "channels": [{"name": "ka"}], "keep-alive": {"content": ":ka\\n", "timeout": 1}},
                 "response": {"code": 200, "headers": {"Content-Type": "text/event-stream"}, "body": ":start\\n"}}
                """)
        }
        try await self.withGrip(upstream, configure: { $0.transports.heartbeatInterval = 0.2 }) { live in
            let client = try await RawHTTPClient.get(port: live.publicPort, "/events")
            #expect(await client.wait { $0.contains(":start\n") })
            #expect(client.text.contains("Content-Type: text/event-stream\r\n"))
            #expect(await client.wait { $0.contains("4\r\n:ka\n\r\n") }, "the keep-alive after a second of silence")
            await client.close()
        }
        await upstream.stop()
    }

    @Test("A misbehaving app's instruction is a 502 with its reason; the gateway and its subscribers carry on")
    func badInstructions() async throws {
        let upstream = try await TestUpstream.start { request in
            switch request.uri {
            case "/no-channel": .init(headers: [("Grip-Hold", "stream")], text: "")
            case "/bad-name": .init(headers: [("Grip-Hold", "stream"), ("Grip-Channel", "a b")], text: "")
            case "/bad-json": .init(headers: [("Content-Type", "application/grip-instruct")], text: "{")
            case "/split": .init(headers: [("Content-Type", "application/grip-instruct")],
                                 text: #"{"response": {"headers": {"X": "1\r\nSet-Cookie: x"}}}"#)
            default: .init(headers: [("Grip-Hold", "stream"), ("Grip-Channel", "ok")], text: "held\n")
            }
        }
        try await self.withGrip(upstream) { live in
            let held = try await RawHTTPClient.get(port: live.publicPort, "/fine")
            #expect(await held.wait { $0.contains("held\n") })
            for (path, reason) in [("/no-channel", "GRIP hold names no channel"),
                                   ("/bad-name", "GRIP channel name is not valid for this gateway"),
                                   ("/bad-json", "application/grip-instruct body is not valid JSON"),
                                   ("/split", "header value holds CR, LF or NUL")] {
                let response = Curl.request("GET", "\(live.publicURL)\(path)")
                #expect(response.status == 502, "\(path)")
                #expect(response.body.contains(reason), "\(path): \(response.body)")
            }
            try publish(live, "ok", "still here\n")
            #expect(await held.wait { $0.contains("still here\n") })
            await held.close()
        }
        await upstream.stop()
    }

    @Test("An HTTP/1.0 client's stream is unframed and ends by closing")
    func http10Stream() async throws {
        let upstream = try await TestUpstream.start { _ in
            .init(headers: [("Grip-Hold", "stream"), ("Grip-Channel", "old")], text: "start\n")
        }
        try await self.withGrip(upstream) { live in
            let client = try await RawHTTPClient.connect(port: live.publicPort)
            try await client.send("GET /old HTTP/1.0\r\nHost: a\r\n\r\n")
            #expect(await client.wait { $0.hasSuffix("\r\n\r\nstart\n") })
            #expect(client.text.contains("Connection: close\r\n"))
            try publish(live, "old", "next\n")
            #expect(await client.wait { $0.hasSuffix("start\nnext\n") })
            self.epcp(live, #"{"items": [{"channel": "old", "formats": {"http-stream": {"action": "close"}}}]}"#)
            #expect(await client.waitForClose())
            await client.close()
        }
        await upstream.stop()
    }

    @Test("Grip-Link rel=next: after its timeout the app is asked for the link (Grip-Last), and its answer continues or ends the stream")
    func nextLink() async throws {
        let upstream = try await TestUpstream.start { request in
            switch request.uri {
            case "/live":
                .init(headers: [("Grip-Hold", "stream"), ("Grip-Channel", "one"),
                                ("Grip-Link", "<next?page=2>; rel=next; timeout=1")], text: "page 1\n")
            case "/next?page=2":
                .init(headers: [("Grip-Hold", "stream"), ("Grip-Channel", "one, two"),
                                ("Grip-Link", "<http://elsewhere.example/next?page=3>; rel=next; timeout=1")],
                      text: "page 2\n")
            default:
                .init(headers: [("Content-Type", "text/plain")], text: "the end\n")
            }
        }
        try await self.withGrip(upstream) { live in
            let client = try await RawHTTPClient.get(port: live.publicPort, "/live")
            #expect(await client.wait { $0.contains("page 1\n") })
            let id = try publish(live, "one", "before the link\n")
            #expect(await client.wait { $0.contains("before the link\n") })
            #expect(await client.wait { $0.contains("page 2\n") }, "the link's body, after a second")
            try publish(live, "two", "on the new channel\n")
            #expect(await client.wait { $0.contains("on the new channel\n") })
            #expect(await client.wait { $0.hasSuffix("8\r\nthe end\n\r\n0\r\n\r\n") }, "a plain answer ends it")
            #expect(await client.waitForClose())
            await client.close()
            let requests = upstream.requests
            #expect(requests.map(\.uri) == ["/live", "/next?page=2", "/next?page=3"])
            #expect(requests[1].values("grip-last").contains("one; last-id=\(id)"))
            #expect(requests[1].method == "GET")
        }
        await upstream.stop()
    }
}
