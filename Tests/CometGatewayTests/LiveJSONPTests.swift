import CometCore
import CometTestSupport
import Foundation
import Synchronization
import Testing

/// One complete HTTP response with a `Content-Length`.
private struct JSONPResponse {
    var status: Int
    var head: String
    var body: String
    /// Bytes of the connection this response took (head and body).
    var length: Int

    /// The JSON argument of `/**/NAME(…);`, parsed; fails the test when the framing is not exactly that.
    func argument(_ callback: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
        let prefix = "/**/\(callback)("
        #expect(self.body.hasPrefix(prefix), "not framed for \(callback): \(self.body)", sourceLocation: sourceLocation)
        #expect(self.body.hasSuffix(");"), "not framed for \(callback): \(self.body)", sourceLocation: sourceLocation)
        guard self.body.hasPrefix(prefix), self.body.hasSuffix(");") else { return [:] }
        return try jsonObject(String(self.body.dropFirst(prefix.count).dropLast(2)))
    }

    /// The data of the messages of the argument.
    func data(_ callback: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String] {
        let messages = try #require(try self.argument(callback, sourceLocation: sourceLocation)["messages"] as? [[String: Any]],
                                    sourceLocation: sourceLocation)
        return messages.compactMap { $0["data"] as? String }
    }
}

/// The response starting at byte `offset` of `bytes`; nil while incomplete.
private func response(in bytes: [UInt8], from offset: Int) -> JSONPResponse? {
    guard offset <= bytes.count, let (head, rest) = splitHTTPHead(Array(bytes[offset...])),
          let length = headerValue(head, "Content-Length").flatMap({ Int($0) }), rest.count >= length
    else { return nil }
    let body = String(decoding: rest.prefix(length), as: UTF8.self)
    return JSONPResponse(status: httpStatus(head) ?? 0, head: head, body: body,
                         length: bytes.count - offset - rest.count + length)
}

/// Polls on one keep-alive connection, one response after another.
private final class JSONPConnection: Sendable {
    let client: LiveByteClient
    private let consumed = Mutex(0)

    init(_ live: LiveGateway) async throws {
        self.client = try await LiveByteClient.connect(port: live.publicPort)
    }

    func send(_ path: String, headers: [String] = []) async throws {
        var request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for header in headers { request += header + "\r\n" }
        try await self.client.send(request + "\r\n")
    }

    /// The next complete response (bounded wait).
    func next(sourceLocation: SourceLocation = #_sourceLocation) async throws -> JSONPResponse {
        let offset = self.consumed.withLock { $0 }
        let complete = await self.client.wait { bytes, _ in response(in: bytes, from: offset) != nil }
        #expect(complete, "no complete response after byte \(offset): \(self.client.text)", sourceLocation: sourceLocation)
        let parsed = try #require(response(in: self.client.bytes, from: offset), sourceLocation: sourceLocation)
        self.consumed.withLock { $0 += parsed.length }
        return parsed
    }

    func close() async {
        await self.client.close()
    }
}

/// One request on a new connection, and its response.
private func request(_ live: LiveGateway, _ path: String, headers: [String] = []) async throws -> JSONPResponse {
    let connection = try await JSONPConnection(live)
    defer { Task { await connection.close() } }
    try await connection.send(path, headers: headers)
    return try await connection.next()
}

/// JSONP long polling: the long-poll batch as `/**/NAME({…});`, for a `<script src>` tag on any page.
@Suite("Live JSONP", .serialized)
struct LiveJSONPTests {
    @Test("?callback=cb is JSONP: a held poll answered by a publish, as /**/cb({…}); with its headers")
    func format() async throws {
        try await LiveGateway.withGateway { live in
            let first = try publish(live, "jp", "before")
            let connection = try await JSONPConnection(live)
            try await connection.send("/sub/jp?callback=cb&last_event_id=\(first)")
            #expect(try await waitForSubscribers(live, "jp", 1))
            let id = try publish(live, "jp", "held </script> \u{2028}", headers: ["Content-Type: text/plain"])
            let answer = try await connection.next()
            #expect(answer.status == 200)
            #expect(headerValue(answer.head, "Content-Type") == "application/javascript; charset=utf-8")
            #expect(headerValue(answer.head, "X-Content-Type-Options") == "nosniff")
            #expect(headerValue(answer.head, "Cache-Control") == "no-store")
            #expect(answer.body.hasPrefix("/**/cb({\"messages\":[{"))
            #expect(answer.body.hasSuffix("}],\"last_event_id\":\"\(id)\"});"))
            #expect(!answer.body.contains("</script") && !answer.body.contains("\u{2028}"))
            let argument = try answer.argument("cb")
            let messages = try #require(argument["messages"] as? [[String: Any]])
            #expect(messages.count == 1)
            #expect(messages.first?["data"] as? String == "held </script> \u{2028}")
            #expect(messages.first?["id"] as? String == id)
            #expect(messages.first?["channel"] as? String == "jp")
            #expect(messages.first?["content_type"] as? String == "text/plain")
            #expect(argument["last_event_id"] as? String == id)
            #expect(argument["gap"] == nil)
            await connection.close()

            // ?transport=jsonp with a dotted name; a poll that times out is an empty batch with the cursor.
            let timedOut = try await request(live, "/sub/jp?transport=jsonp&callback=App.comet.recv&timeout=1&_=123")
            #expect(timedOut.status == 200)
            let empty = try timedOut.argument("App.comet.recv")
            #expect((empty["messages"] as? [Any])?.isEmpty == true)
            #expect(empty["last_event_id"] as? String == id)

            // The longest name allowed, 128 characters.
            let longest = String(repeating: "a", count: 128)
            let long = try await request(live, "/sub/jp?callback=\(longest)&last_event_id=\(first)")
            #expect(try long.data(longest) == ["held </script> \u{2028}"])
        }
    }

    @Test("?transport=jsonp without a callback, and hostile callback names, are plain-text 400s that never echo the name")
    func badCallbacks() async throws {
        try await LiveGateway.withGateway { live in
            let missing = try await request(live, "/sub/jb?transport=jsonp")
            #expect(missing.status == 400)
            #expect(headerValue(missing.head, "Content-Type") == "text/plain; charset=utf-8")
            #expect(missing.body.contains("callback"))

            let names = [
                "alert(1)//", "a-b", "%3Cscript%3E", "<script>", String(repeating: "a", count: 129), "a..b", "", ".a", "a.",
                "1abc", "a%20b", "a+b", "a%00b", "%C3%A9t%C3%A9", "a;alert(1)", "a%0Ab", "a[0]", "a%27",
            ]
            for name in names {
                for path in ["/sub/jb?callback=\(name)", "/sub/jb?transport=jsonp&callback=\(name)"] {
                    let answer = try await request(live, path)
                    #expect(answer.status == 400, "\(path)")
                    #expect(headerValue(answer.head, "Content-Type") == "text/plain; charset=utf-8", "\(path)")
                    #expect(answer.body.hasPrefix("invalid callback name"), "\(path): \(answer.body)")
                    let decoded = name.removingPercentEncoding ?? name
                    if !decoded.isEmpty {
                        #expect(!answer.body.contains(decoded), "\(path) echoed: \(answer.body)")
                    }
                    #expect(!answer.body.contains("script"), "\(path)")
                }
            }
        }
    }

    @Test("A JSONP poll resumes from its cursor; a cursor older than the history is a gap")
    func resume() async throws {
        try await LiveGateway.withGateway(configure: { $0.history.maxMessages = 2 }) { live in
            let first = try publish(live, "jr", "g1")
            try publish(live, "jr", "g2")
            let third = try publish(live, "jr", "g3")
            try publish(live, "jr", "g4")
            let last = try publish(live, "jr", "g5")

            let exact = try await request(live, "/sub/jr?callback=cb&last_event_id=\(third)")
            let resumed = try exact.argument("cb")
            #expect(try exact.data("cb") == ["g4", "g5"])
            #expect(resumed["last_event_id"] as? String == last)
            #expect(resumed["gap"] == nil)

            let evicted = try await request(live, "/sub/jr?callback=cb&last_event_id=\(first)")
            let gap = try evicted.argument("cb")
            #expect(evicted.status == 200)
            #expect(gap["gap"] as? Bool == true)
            #expect(gap["gap_channels"] as? [String] == ["jr"])
            #expect(try evicted.data("cb") == ["g4", "g5"])
            #expect(gap["last_event_id"] as? String == last)
        }
    }

    @Test("Two JSONP polls in a row on one keep-alive connection get consecutive messages, nothing lost")
    func keepAlive() async throws {
        try await LiveGateway.withGateway { live in
            let start = try publish(live, "jk", "m0")
            try publish(live, "jk", "m1")
            let connection = try await JSONPConnection(live)
            try await connection.send("/sub/jk?callback=cb&last_event_id=\(start)")
            let first = try await connection.next()
            #expect(try first.data("cb") == ["m1"])
            #expect(headerValue(first.head, "Connection") == "keep-alive")
            let cursor = try #require(try first.argument("cb")["last_event_id"] as? String)

            // Between the polls: the connection is still subscribed, and the message waits for the next poll.
            #expect(try await waitForSubscribers(live, "jk", 1))
            let receipt = Curl.post("\(live.publishURL)/pub/jk", "m2")
            #expect(receipt.status == 201)
            try publish(live, "jk", "m3")

            try await connection.send("/sub/jk?callback=cb&last_event_id=\(cursor)&_=2")
            let second = try await connection.next()
            #expect(second.status == 200)
            #expect(try second.data("cb") == ["m2", "m3"])
            #expect(try second.argument("cb")["gap"] == nil)
            let cursor2 = try #require(try second.argument("cb")["last_event_id"] as? String)

            // The next poll names another callback: answered in its own framing, from the same cursor.
            try publish(live, "jk", "m4")
            try await connection.send("/sub/jk?callback=other&last_event_id=\(cursor2)")
            let third = try await connection.next()
            #expect(try third.data("other") == ["m4"])
            #expect(!third.body.contains("cb("))

            // A held third-in-a-row poll is answered by a publish.
            let cursor3 = try #require(try third.argument("other")["last_event_id"] as? String)
            try await connection.send("/sub/jk?callback=other&last_event_id=\(cursor3)")
            #expect(try await waitForSubscribers(live, "jk", 1))
            try publish(live, "jk", "m5")
            #expect(try await connection.next().data("other") == ["m5"])
            await connection.close()
        }
    }

    @Test("A JSONP poll of a deleted channel is a 200 calling the callback with {\"closed\":true,…}")
    func deleted() async throws {
        try await LiveGateway.withGateway { live in
            let id = try publish(live, "jd", "doomed")
            let connection = try await JSONPConnection(live)
            try await connection.send("/sub/jd?callback=App.closed&last_event_id=\(id)")
            #expect(try await waitForSubscribers(live, "jd", 1))
            #expect(Curl.request("DELETE", "\(live.publishURL)/pub/jd").status == 200)
            let answer = try await connection.next()
            #expect(answer.status == 200)
            #expect(headerValue(answer.head, "Content-Type") == "application/javascript; charset=utf-8")
            #expect(headerValue(answer.head, "X-Content-Type-Options") == "nosniff")
            #expect(answer.body.hasPrefix("/**/App.closed({\"closed\":true,"))
            let argument = try answer.argument("App.closed")
            #expect(argument["closed"] as? Bool == true)
            #expect(argument["channel"] as? String == "jd")
            #expect(argument["last_event_id"] as? String == id)
            await connection.close()
        }
    }

    @Test("Held polls with different callbacks (and a JSON poll) answered by one publish each get their own framing")
    func sharedResponseKeepsFraming() async throws {
        try await LiveGateway.withGateway { live in
            // Several of each, so that pollers of every kind share an event loop (the gateway runs two).
            let kinds: [(callback: String?, headers: [String])] = [
                ("cbA", []), ("cbA", []), ("cbA", ["Connection: close"]),
                ("cbB", []), ("cbB", []), ("cbB", ["Connection: close"]),
                (nil, []), (nil, []), (nil, ["Connection: close"]),
            ]
            var connections: [JSONPConnection] = []
            for kind in kinds {
                let connection = try await JSONPConnection(live)
                let path = kind.callback.map { "/sub/sh?callback=\($0)" } ?? "/sub/sh"
                try await connection.send(path, headers: kind.headers)
                connections.append(connection)
            }
            #expect(try await waitForSubscribers(live, "sh", kinds.count))
            let id = try publish(live, "sh", "shared")
            var answers: [JSONPResponse] = []
            for connection in connections { answers.append(try await connection.next()) }
            let expectedJSON = answers[6].body
            #expect(expectedJSON.hasPrefix("{\"messages\":["))
            for (kind, answer) in zip(kinds, answers) {
                let closes = kind.headers.contains("Connection: close")
                #expect(answer.status == 200)
                #expect(headerValue(answer.head, "Connection") == (closes ? "close" : "keep-alive"))
                if let callback = kind.callback {
                    #expect(headerValue(answer.head, "Content-Type") == "application/javascript; charset=utf-8")
                    #expect(headerValue(answer.head, "X-Content-Type-Options") == "nosniff")
                    #expect(answer.body == "/**/\(callback)(\(expectedJSON));", "\(callback): \(answer.body)")
                    #expect(try answer.data(callback) == ["shared"])
                } else {
                    #expect(headerValue(answer.head, "Content-Type") == "application/json; charset=utf-8")
                    #expect(headerValue(answer.head, "X-Content-Type-Options") == nil)
                    #expect(answer.body == expectedJSON)
                }
            }
            let parsed = try jsonObject(expectedJSON)
            #expect(parsed["last_event_id"] as? String == id)
            #expect(!expectedJSON.contains("cbA") && !expectedJSON.contains("cbB"))
            for connection in connections { await connection.close() }
        }
    }
    @Test("A graceful shutdown answers a held JSONP poll at once: its callback, an empty batch, its cursor")
    func drain() async throws {
        try await LiveGateway.withGateway { live in
            let id = try publish(live, "jdr", "before")
            let connection = try await JSONPConnection(live)
            try await connection.send("/sub/jdr?callback=cb&last_event_id=\(id)")
            #expect(try await waitForSubscribers(live, "jdr", 1))
            await live.triggerShutdown()
            let answer = try await connection.next()
            #expect(answer.status == 200)
            #expect(headerValue(answer.head, "Connection") == "close")
            #expect(headerValue(answer.head, "Content-Type") == "application/javascript; charset=utf-8")
            let argument = try answer.argument("cb")
            #expect((argument["messages"] as? [Any])?.isEmpty == true)
            #expect(argument["last_event_id"] as? String == id)
            #expect(await connection.client.waitForClose())
        }
    }
}
