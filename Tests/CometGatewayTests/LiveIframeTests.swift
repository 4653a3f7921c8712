import CometCore
import CometTestSupport
import Foundation
import Testing

// MARK: - A strict chunked-body decoder

/// A chunked body that does not follow RFC 9112, section 7.1.
private struct MalformedChunkedBody: Error, CustomStringConvertible {
    var description: String
}

/// What a (possibly still open) chunked body held so far.
private struct ChunkedBody {
    /// Every complete chunk, in order (the last chunk, of size 0, excluded).
    var chunks: [[UInt8]] = []
    /// The last chunk (`0\r\n\r\n`) arrived.
    var ended = false
}

/// Decodes a chunked body: size lines in hex (no extensions: the gateway sends none), CRLF after each size line and
/// each chunk's data, the last chunk `0\r\n\r\n` with no trailers and nothing after it. A trailing incomplete chunk
/// is not an error (the stream is still arriving); any byte that breaks the framing is.
private func decodeChunked(_ body: ArraySlice<UInt8>) throws -> ChunkedBody {
    func isHex(_ byte: UInt8) -> Bool {
        (48...57).contains(byte) || (97...102).contains(byte) || (65...70).contains(byte)
    }
    var result = ChunkedBody()
    var index = body.startIndex
    while index < body.endIndex {
        guard let lineFeed = body[index...].firstIndex(of: 10) else {
            // An incomplete size line: hex digits, perhaps followed by its CR.
            var partial = body[index...]
            if partial.last == 13 { partial = partial.dropLast() }
            guard partial.allSatisfy(isHex), partial.count <= 8 else {
                throw MalformedChunkedBody(description: "bad size line at byte \(index - body.startIndex)")
            }
            return result
        }
        guard lineFeed > index, body[lineFeed - 1] == 13 else {
            throw MalformedChunkedBody(description: "size line without CRLF at byte \(index - body.startIndex)")
        }
        let sizeText = body[index..<(lineFeed - 1)]
        guard !sizeText.isEmpty, sizeText.count <= 8, sizeText.allSatisfy(isHex),
              let size = Int(String(decoding: sizeText, as: UTF8.self), radix: 16)
        else {
            throw MalformedChunkedBody(description: "bad chunk size '\(String(decoding: sizeText, as: UTF8.self))'")
        }
        let dataStart = lineFeed + 1
        let available = body.endIndex - dataStart
        if size == 0 {
            // The last chunk: no trailer fields, then the final CRLF, then nothing.
            if available >= 1, body[dataStart] != 13 { throw MalformedChunkedBody(description: "trailer after the last chunk") }
            if available >= 2, body[dataStart + 1] != 10 { throw MalformedChunkedBody(description: "last chunk without CRLF") }
            if available > 2 { throw MalformedChunkedBody(description: "\(available - 2) bytes after the last chunk") }
            result.ended = available == 2
            return result
        }
        if available < size + 2 {
            if available == size + 1, body[dataStart + size] != 13 {
                throw MalformedChunkedBody(description: "chunk of \(size) bytes not followed by CRLF")
            }
            return result  // still arriving
        }
        guard body[dataStart + size] == 13, body[dataStart + size + 1] == 10 else {
            throw MalformedChunkedBody(description: "chunk of \(size) bytes not followed by CRLF")
        }
        result.chunks.append(Array(body[dataStart..<(dataStart + size)]))
        index = dataStart + size + 2
    }
    return result
}

// MARK: - The forever frame as a browser would see it

/// A forever-iframe response decoded: its head, its chunks as text, and the objects its scripts pass to `c`.
private struct IframeDocument {
    var head: String
    var chunks: [String]
    var ended: Bool

    /// The decoded HTML document so far.
    var html: String { self.chunks.joined() }

    /// Parses what `bytes` hold; nil while the head is incomplete.
    init?(_ bytes: [UInt8]) throws {
        guard let (head, rest) = splitHTTPHead(bytes) else { return nil }
        self.head = head
        let body = try decodeChunked(rest)
        self.chunks = try body.chunks.map { chunk in
            guard let text = String(validating: chunk, as: UTF8.self) else {
                throw MalformedChunkedBody(description: "a chunk that is not UTF-8 on its own")
            }
            return text
        }
        self.ended = body.ended
    }

    /// The JSON of every `c(…)` call, in order: the scripts of the first chunk (the document start), then one per
    /// later chunk, each of which must be exactly `<script>c(JSON)</script>\n` (or, last, the end of the document).
    func scriptJSON() throws -> [String] {
        guard let first = self.chunks.first else { return [] }
        var json: [String] = []
        var rest = Substring(first)
        while let open = rest.range(of: "<script>c(") {
            guard let close = rest[open.upperBound...].range(of: ")</script>\n") else {
                throw MalformedChunkedBody(description: "unterminated start script: \(first)")
            }
            json.append(String(rest[open.upperBound..<close.lowerBound]))
            rest = rest[close.upperBound...]
        }
        for (offset, chunk) in self.chunks.dropFirst().enumerated() {
            if chunk == "</body></html>\n" {
                guard offset == self.chunks.count - 2 else {
                    throw MalformedChunkedBody(description: "chunks after the end of the document")
                }
                continue
            }
            guard chunk.hasPrefix("<script>c("), chunk.hasSuffix(")</script>\n") else {
                throw MalformedChunkedBody(description: "a chunk that is not one script: \(chunk)")
            }
            json.append(String(chunk.dropFirst("<script>c(".count).dropLast(")</script>\n".count)))
        }
        return json
    }

    /// The objects passed to `c`.
    func objects() throws -> [[String: Any]] {
        try self.scriptJSON().map(jsonObject)
    }

    /// The message objects (those with `data`).
    func messages() throws -> [[String: Any]] {
        try self.objects().filter { $0["data"] != nil }
    }

    /// The chunks after the document start that carry a message.
    var messageChunks: [String] {
        self.chunks.dropFirst().filter { $0.contains("\"data\":") }
    }
}

/// Whether `bytes` hold a forever frame with at least `count` messages (false while the head is incomplete).
@Sendable private func hasIframeMessages(_ bytes: [UInt8], _ count: Int) -> Bool {
    guard let document = try? IframeDocument(bytes), let messages = try? document.messages() else { return false }
    return messages.count >= count
}

/// Opens a forever frame.
private func openIframe(_ live: LiveGateway, _ path: String, headers: [String] = []) async throws -> LiveByteClient {
    let client = try await LiveByteClient.connect(port: live.publicPort)
    var request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(live.publicPort)\r\n"
    for header in headers { request += header + "\r\n" }
    try await client.send(request + "\r\n")
    return client
}

/// Waits until the frame's start script (`{"last_event_id":…}`) arrived and returns the parsed document.
private func waitForStart(_ client: LiveByteClient, sourceLocation: SourceLocation = #_sourceLocation) async throws -> IframeDocument {
    let started = await client.wait { bytes, _ in
        ((try? IframeDocument(bytes))?.chunks.first?.contains("<script>c({\"last_event_id\":")) ?? false
    }
    #expect(started, "no start script: \(client.text)", sourceLocation: sourceLocation)
    return try #require(try IframeDocument(client.bytes), sourceLocation: sourceLocation)
}

/// Waits until a response ends (the connection closes) and returns its status, head and body text.
private func completeResponse(_ client: LiveByteClient, sourceLocation: SourceLocation = #_sourceLocation) async -> (status: Int, head: String, body: String) {
    let done = await client.wait { bytes, closed in
        guard let (head, rest) = splitHTTPHead(bytes) else { return closed }
        if let length = headerValue(head, "Content-Length").flatMap({ Int($0) }) { return rest.count >= length }
        return closed
    }
    #expect(done, "incomplete response: \(client.text)", sourceLocation: sourceLocation)
    let (head, rest) = splitHTTPHead(client.bytes) ?? ("", [])
    return (httpStatus(head) ?? 0, head, String(decoding: rest, as: UTF8.self))
}

// MARK: - Tests

/// The hidden-iframe forever frame (`?transport=iframe`): one chunked HTML document, one script per event.
@Suite("Live forever iframe", .serialized)
struct LiveIframeTests {
    @Test("The frame is a chunked HTML document: head, exactly iframe_padding spaces, the c definition, the cursor",
          arguments: [100, 0])
    func documentStart(padding: Int) async throws {
        try await LiveGateway.withGateway(configure: { $0.transports.iframePadding = padding }) { live in
            let before = try publish(live, "if", "before the frame")
            let client = try await openIframe(live, "/sub/if?transport=iframe&callback=App.recv")
            let document = try await waitForStart(client)
            #expect(httpStatus(document.head) == 200)
            #expect(headerValue(document.head, "Content-Type") == "text/html; charset=utf-8")
            #expect(headerValue(document.head, "Transfer-Encoding") == "chunked")
            #expect(headerValue(document.head, "Content-Length") == nil)
            #expect(headerValue(document.head, "Cache-Control") == "no-cache, no-store")
            #expect(headerValue(document.head, "X-Accel-Buffering") == "no")
            #expect(headerValue(document.head, "Connection") == "close")

            let start = try #require(document.chunks.first)
            #expect(start.hasPrefix("<!DOCTYPE html>"))
            // Exactly `padding` spaces between the opening of the body and the first script, and nothing else but
            // line breaks.
            let bodyOpen = try #require(start.range(of: "<body>"))
            let definition = "<script>var c=function(m){parent.App.recv(m)};</script>\n"
            let firstScript = try #require(start.range(of: definition), "no c definition calling parent.App.recv: \(start)")
            let padded = start[bodyOpen.upperBound..<firstScript.lowerBound]
            #expect(padded.filter { $0 == " " }.count == padding)
            #expect(padded.allSatisfy { $0 == " " || $0 == "\n" })
            #expect(start.components(separatedBy: "<script>").count - 1 == 2, "the definition and the start script")

            // The start script carries the current cursor: the id of the last message (live only, no replay).
            let objects = try document.objects()
            #expect(objects.count == 1)
            #expect(objects.first?["last_event_id"] as? String == before)
            #expect(try document.messages().isEmpty)

            // A message arrives as its own chunk.
            let id = try publish(live, "if", "hello")
            #expect(await client.wait { bytes, _ in hasIframeMessages(bytes, 1) })
            let after = try #require(try IframeDocument(client.bytes))
            let messages = try after.messages()
            #expect(messages.count == 1)
            #expect(messages.first?["data"] as? String == "hello")
            #expect(messages.first?["id"] as? String == id)
            #expect(messages.first?["channel"] as? String == "if")
            #expect(after.chunks.count == 2)
            #expect(!client.isClosed)
            await client.close()
        }
    }

    @Test("Without a callback the frame calls parent.comet_message; a bad callback name is a 400 that does not echo it")
    func defaultAndBadCallback() async throws {
        try await LiveGateway.withGateway { live in
            let client = try await openIframe(live, "/sub/dc?transport=iframe")
            let document = try await waitForStart(client)
            #expect(document.chunks.first?.contains("<script>var c=function(m){parent.comet_message(m)};</script>") == true)
            await client.close()

            for name in ["alert(1)//", "a-b", "%3Cscript%3E", "a..b", "1a", String(repeating: "a", count: 129)] {
                let bad = try await openIframe(live, "/sub/dc?transport=iframe&callback=\(name)")
                let response = await completeResponse(bad)
                #expect(response.status == 400, "\(name)")
                #expect(headerValue(response.head, "Content-Type") == "text/plain; charset=utf-8")
                #expect(response.body.contains("invalid callback name"))
                #expect(!response.body.contains(name.removingPercentEncoding ?? name))
                await bad.close()
            }
        }
    }

    @Test("Hostile payloads from a legacy backend each arrive as one script chunk that cannot end the script")
    func hostilePayloads() async throws {
        try await LiveGateway.withGateway(configure: { $0.transports.iframePadding = 16 }) { live in
            let client = try await openIframe(live, "/sub/hostile?transport=iframe&callback=App.recv")
            _ = try await waitForStart(client)
            let payloads = [
                "</script><script>alert(1)</script>",
                "</SCRIPT >x</sCrIpT\t>",
                "<!-- comment <script> -->",
                "\"double\" and 'single' quotes",
                "back\\slash \\u2028 \\\" \\",
                "new\nline\r\nand\rreturn\ttab",
                "line\u{2028}separator",
                "paragraph\u{2029}separator",
                "üñíçødé 日本語 🎉 \u{7F} \u{1} <&>",
                "}); alert(1); c({",
            ]
            var ids: [String] = []
            for payload in payloads {
                ids.append(try publish(live, "hostile", payload, headers: ["Content-Type: text/plain; x=\"</script>\""]))
            }
            #expect(await client.wait { bytes, _ in hasIframeMessages(bytes, payloads.count) })
            let document = try #require(try IframeDocument(client.bytes))
            let messages = try document.messages()
            #expect(messages.map { $0["data"] as? String } == payloads)
            #expect(messages.map { $0["id"] as? String } == ids)
            #expect(messages.allSatisfy { $0["content_type"] as? String == "text/plain; x=\"</script>\"" })

            // Each message is its own chunk, exactly one script.
            let chunks = document.messageChunks
            #expect(chunks.count == payloads.count)
            for chunk in chunks {
                #expect(chunk.hasPrefix("<script>c({") && chunk.hasSuffix("})</script>\n"), "\(chunk)")
                #expect(chunk.components(separatedBy: "<script>").count == 2, "\(chunk)")
            }

            // The decoded document never closes a script other than ours, and never opens a comment.
            let html = document.html.lowercased()
            let opened = html.components(separatedBy: "<script").count - 1
            let closed = html.components(separatedBy: "</script").count - 1
            #expect(opened == payloads.count + 2)  // the definition, the start script, one per message
            #expect(closed == opened)
            var rest = Substring(html)
            while let range = rest.range(of: "</script") {
                let before = rest[..<range.lowerBound].suffix(2)
                #expect(before == "})" || before == "};", "a </script after \(before)")
                #expect(rest[range.upperBound...].hasPrefix(">\n"))
                rest = rest[range.upperBound...]
            }
            #expect(!html.contains("<!--"))
            #expect(!document.html.contains("\u{2028}") && !document.html.contains("\u{2029}"))
            await client.close()
        }
    }

    @Test("?origin= needs an exact entry of transports.allowed_origins: then c posts to that origin")
    func postMessageOrigin() async throws {
        let path = "/sub/po?transport=iframe&origin=https://page.example"
        // Default (empty allowlist): refused.
        try await LiveGateway.withGateway { live in
            let client = try await openIframe(live, path)
            let response = await completeResponse(client)
            #expect(response.status == 403)
            #expect(headerValue(response.head, "Content-Type") == "text/plain; charset=utf-8")
            await client.close()
        }
        // "*" never allows postMessage.
        try await LiveGateway.withGateway(configure: { $0.transports.allowedOrigins = ["*"] }) { live in
            let client = try await openIframe(live, path)
            #expect(await completeResponse(client).status == 403)
            await client.close()
        }
        try await LiveGateway.withGateway(configure: { $0.transports.allowedOrigins = ["https://page.example"] }) { live in
            let client = try await openIframe(live, path)
            let document = try await waitForStart(client)
            #expect(httpStatus(document.head) == 200)
            let start = try #require(document.chunks.first)
            #expect(start.contains("<script>var c=function(m){parent.postMessage(m,\"https://page.example\")};</script>\n"),
                    "\(start)")
            #expect(!start.contains("comet_message"))
            let id = try publish(live, "po", "posted")
            #expect(await client.wait { bytes, _ in hasIframeMessages(bytes, 1) })
            #expect(try IframeDocument(client.bytes)?.messages().first?["id"] as? String == id)
            await client.close()

            // The origin as a browser's URLSearchParams encodes it is the same origin.
            let encoded = try await openIframe(live, "/sub/po?transport=iframe&origin=https%3A%2F%2Fpage.example")
            let encodedStart = try await waitForStart(encoded)
            #expect(encodedStart.chunks.first?.contains("parent.postMessage(m,\"https://page.example\")") == true)
            await encoded.close()

            // Another origin, or a listed one with another port or scheme, is refused.
            for other in ["https://evil.example", "http://page.example", "https://page.example:8443", "https://page.example/"] {
                let refused = try await openIframe(live, "/sub/po?transport=iframe&origin=\(other)")
                #expect(await completeResponse(refused).status == 403, "\(other)")
                await refused.close()
            }
            // origin and callback together: 400.
            let both = try await openIframe(live, "\(path)&callback=App.recv")
            #expect(await completeResponse(both).status == 400)
            await both.close()
        }
    }

    @Test("A frame opened with last_event_id gets the missed messages, then live ones; an evicted cursor is a gap")
    func resume() async throws {
        try await LiveGateway.withGateway(configure: { $0.history.maxMessages = 3 }) { live in
            let first = try publish(live, "ir", "m1")
            try publish(live, "ir", "m2")
            try publish(live, "ir", "m3")
            let client = try await openIframe(live, "/sub/ir?transport=iframe&last_event_id=\(first)")
            #expect(await client.wait { bytes, _ in hasIframeMessages(bytes, 2) })
            try publish(live, "ir", "m4")
            #expect(await client.wait { bytes, _ in hasIframeMessages(bytes, 3) })
            let document = try #require(try IframeDocument(client.bytes))
            #expect(try document.messages().map { $0["data"] as? String } == ["m2", "m3", "m4"])
            #expect(try document.objects().contains { $0["gap"] != nil } == false)
            await client.close()

            // m1 and m2 are evicted now (3 retained): a cursor before m1 is a gap, reported before the replay.
            let gapClient = try await openIframe(live, "/sub/ir?transport=iframe&last_event_id=\(UInt64(first)! - 1)")
            #expect(await gapClient.wait { bytes, _ in hasIframeMessages(bytes, 3) })
            let objects = try #require(try IframeDocument(gapClient.bytes)).objects()
            #expect(objects.first?["last_event_id"] != nil)
            #expect(objects.count > 1 && objects[1]["gap"] as? Bool == true)
            #expect(objects.count > 1 && objects[1]["channels"] as? [String] == ["ir"])
            #expect(objects.dropFirst(2).map { $0["data"] as? String } == ["m2", "m3", "m4"])
            await gapClient.close()
        }
    }

    /// The parts of a frame that ended with a reconnect: the data of its messages, the id of its last message and
    /// the reconnect cursor.
    private func recycledFrame(_ client: LiveByteClient,
                               sourceLocation: SourceLocation = #_sourceLocation) throws -> (data: [String], lastID: String?, cursor: String) {
        let document = try #require(try IframeDocument(client.bytes), sourceLocation: sourceLocation)
        #expect(document.ended, "no last chunk: \(client.text.suffix(300))", sourceLocation: sourceLocation)
        #expect(client.bytes.suffix(5) == Array("0\r\n\r\n".utf8), sourceLocation: sourceLocation)
        #expect(document.chunks.last == "</body></html>\n", sourceLocation: sourceLocation)
        let objects = try document.objects()
        let messages = objects.filter { $0["data"] != nil }
        let reconnect = try #require(objects.last, sourceLocation: sourceLocation)
        #expect(reconnect["reconnect"] as? Bool == true, "ended with \(reconnect)", sourceLocation: sourceLocation)
        #expect(reconnect.count == 2, sourceLocation: sourceLocation)
        let cursor = try #require(reconnect["last_event_id"] as? String, sourceLocation: sourceLocation)
        return (messages.compactMap { $0["data"] as? String }, messages.last?["id"] as? String, cursor)
    }

    @Test("Past iframe_max_bytes a live frame tells the page to reconnect and ends; its cursor loses and repeats nothing")
    func recycleLive() async throws {
        try await LiveGateway.withGateway(configure: { $0.transports.iframeMaxBytes = 1024 }) { live in
            let client = try await openIframe(live, "/sub/rc?transport=iframe")
            _ = try await waitForStart(client)
            var published: [String] = []
            // One message at a time until the frame recycles (about 190 bytes each: within 20 messages).
            for index in 0..<20 where !client.isClosed {
                let payload = "r\(index)-" + String(repeating: "x", count: 100)
                try publish(live, "rc", payload)
                published.append(payload)
                let count = published.count
                #expect(await client.wait { bytes, closed in closed || hasIframeMessages(bytes, count) })
            }
            #expect(await client.waitForClose(), "the frame never recycled")
            let frame = try self.recycledFrame(client)
            #expect(!frame.data.isEmpty && frame.data.count < 20)
            #expect(frame.data == Array(published.prefix(frame.data.count)))
            #expect(frame.lastID == frame.cursor, "the reconnect cursor is the last delivered message's id")

            // Two more after the frame ended; the next frame (with the cursor) gets exactly what the first did not.
            for index in 0..<2 {
                let payload = "after\(index)"
                try publish(live, "rc", payload)
                published.append(payload)
            }
            let expected = published.count - frame.data.count
            let next = try await openIframe(live, "/sub/rc?transport=iframe&last_event_id=\(frame.cursor)")
            #expect(await next.wait { bytes, _ in hasIframeMessages(bytes, expected) })
            let rest = try #require(try IframeDocument(next.bytes)).messages().compactMap { $0["data"] as? String }
            #expect(frame.data + rest == published)
            #expect(try #require(try IframeDocument(next.bytes)).objects().contains { $0["gap"] != nil } == false)
            await next.close()
        }
    }

    @Test("A frame that recycles during its catch-up hands out the cursor of what it delivered, not of the whole replay")
    func recycleDuringReplay() async throws {
        try await LiveGateway.withGateway(configure: { $0.transports.iframeMaxBytes = 1024 }) { live in
            let start = try publish(live, "rr", "before")
            let payloads = (0..<20).map { "q\($0)-" + String(repeating: "y", count: 100) }
            for payload in payloads { try publish(live, "rr", payload) }
            // 20 replayed messages of about 190 bytes: the frame recycles in the middle of its catch-up.
            let client = try await openIframe(live, "/sub/rr?transport=iframe&last_event_id=\(start)")
            #expect(await client.waitForClose(), "the frame never recycled")
            let frame = try self.recycledFrame(client)
            #expect(!frame.data.isEmpty && frame.data.count < payloads.count)
            #expect(frame.data == Array(payloads.prefix(frame.data.count)))
            // Resume with the reconnect cursor (a poll: another frame would recycle again): the rest of the history.
            let resumed = try await poll(live, "/sub/rr?last_event_id=\(frame.cursor)&timeout=1")
            let rest = try #require(resumed.body["messages"] as? [[String: Any]]).compactMap { $0["data"] as? String }
            let cursorIsLastDelivered = frame.lastID == frame.cursor
            let nothingLost = frame.data + rest == payloads
            #expect(cursorIsLastDelivered && nothingLost,
                    "last delivered \(frame.lastID ?? "none"), reconnect cursor \(frame.cursor): \(frame.data.count) delivered, \(rest.count) resumed, \(payloads.count - frame.data.count - rest.count) lost")
        }
    }

    @Test("Deleting the channel ends the frame with {\"closed\":true}, the end of the document and the last chunk")
    func channelDeleted() async throws {
        try await LiveGateway.withGateway { live in
            let client = try await openIframe(live, "/sub/gone?transport=iframe")
            _ = try await waitForStart(client)
            try publish(live, "gone", "last words")
            #expect(await client.wait { bytes, _ in hasIframeMessages(bytes, 1) })
            #expect(Curl.request("DELETE", "\(live.publishURL)/pub/gone").status == 200)
            #expect(await client.waitForClose())
            let document = try #require(try IframeDocument(client.bytes))
            #expect(document.ended)
            #expect(document.chunks.last == "</body></html>\n")
            let objects = try document.objects()
            #expect(objects.dropFirst().first?["data"] as? String == "last words")
            #expect(objects.last?["closed"] as? Bool == true)
            #expect(objects.last?["channel"] as? String == "gone")
        }
    }

    @Test("A graceful shutdown ends the frame with a reconnect script carrying the cursor")
    func shutdown() async throws {
        try await LiveGateway.withGateway { live in
            let client = try await openIframe(live, "/sub/sd?transport=iframe")
            _ = try await waitForStart(client)
            let id = try publish(live, "sd", "before the drain")
            #expect(await client.wait { bytes, _ in hasIframeMessages(bytes, 1) })
            await live.triggerShutdown()
            #expect(await client.waitForClose())
            let document = try #require(try IframeDocument(client.bytes))
            #expect(document.ended)
            let last = try #require(try document.objects().last)
            #expect(last["reconnect"] as? Bool == true)
            #expect(last["last_event_id"] as? String == id)
        }
    }

    @Test("An idle frame gets c({\"heartbeat\":true}) chunks")
    func heartbeat() async throws {
        try await LiveGateway.withGateway(configure: { $0.transports.heartbeatInterval = 0.2 }) { live in
            let client = try await openIframe(live, "/sub/hb?transport=iframe")
            _ = try await waitForStart(client)
            let beats = await client.wait { bytes, _ in
                guard let document = try? IframeDocument(bytes) else { return false }
                return document.chunks.filter { $0 == "<script>c({\"heartbeat\":true})</script>\n" }.count >= 2
            }
            #expect(beats, "\(client.text)")
            let document = try #require(try IframeDocument(client.bytes))
            #expect(try document.objects().dropFirst().allSatisfy { $0.count == 1 && $0["heartbeat"] as? Bool == true })
            #expect(!client.isClosed)
            await client.close()
        }
    }

    @Test("A multi-channel frame's messages carry the composite cursor, which resumes both channels")
    func multiChannel() async throws {
        try await LiveGateway.withGateway { live in
            let client = try await openIframe(live, "/sub/mb,ma?transport=iframe")
            let start = try await waitForStart(client)
            let startCursor = try #require(try start.objects().first?["last_event_id"] as? String)
            #expect(startCursor.split(separator: ".").count == 2)
            let a1 = try publish(live, "ma", "a1")
            let b1 = try publish(live, "mb", "b1")
            let a2 = try publish(live, "ma", "a2")
            #expect(await client.wait { bytes, _ in hasIframeMessages(bytes, 3) })
            let messages = try #require(try IframeDocument(client.bytes)).messages()
            #expect(messages.map { $0["data"] as? String } == ["a1", "b1", "a2"])
            #expect(messages.map { $0["channel"] as? String } == ["ma", "mb", "ma"])
            // Sorted channel order: ma then mb.
            let ids = messages.compactMap { $0["id"] as? String }
            #expect(ids.count == 3)
            #expect(ids.first?.hasPrefix("\(a1).") == true)
            #expect(ids.dropFirst().first == "\(a1).\(b1)")
            #expect(ids.last == "\(a2).\(b1)")
            await client.close()

            // The cursor after a1 resumes with b1 and a2.
            let resumed = try await poll(live, "/sub/ma,mb?last_event_id=\(ids[0])&timeout=1")
            let replayed = try #require(resumed.body["messages"] as? [[String: Any]])
            #expect(replayed.map { $0["data"] as? String } == ["b1", "a2"])
            #expect(resumed.body["gap"] == nil)
        }
    }
}
