import CometCore
import Foundation
import NIOCore
import Testing

// Unit tests for `IframeEncoding` (the forever-iframe document and its HTTP chunks), the shared per-message frames
// of `Message.frame(_:)` and `MessageWire.json(cursor:suffix:)`. Chunks are read back with the RFC 9112 section 7.1
// reader below and the JSON inside with Foundation's `JSONSerialization`.

/// Reads a chunked body (RFC 9112 section 7.1, no extensions or trailers): the data of each chunk, and whether the
/// last chunk (`0` CRLF CRLF) ended it. Nil when the framing is wrong or bytes are left over.
private func readChunks(_ bytes: [UInt8]) -> (chunks: [[UInt8]], ended: Bool)? {
    var chunks: [[UInt8]] = []
    var index = 0
    let crlf: [UInt8] = [0x0D, 0x0A]
    while index < bytes.count {
        guard let lineEnd = (index..<bytes.count - 1).first(where: { bytes[$0] == 0x0D && bytes[$0 + 1] == 0x0A }) else { return nil }
        let sizeText = String(decoding: bytes[index..<lineEnd], as: UTF8.self)
        guard !sizeText.isEmpty, sizeText.allSatisfy(\.isHexDigit), let size = Int(sizeText, radix: 16) else { return nil }
        index = lineEnd + 2
        if size == 0 {
            guard Array(bytes[index...]) == crlf else { return nil }
            return (chunks, true)
        }
        guard index + size + 2 <= bytes.count, Array(bytes[(index + size)..<(index + size + 2)]) == crlf else { return nil }
        chunks.append(Array(bytes[index..<(index + size)]))
        index += size + 2
    }
    return (chunks, false)
}

/// How many times `needle` occurs in `haystack`, ASCII case-insensitively (HTML tag names are).
private func occurrences(of needle: String, in haystack: [UInt8]) -> Int {
    let lower = haystack.map { (0x41...0x5A).contains($0) ? $0 + 0x20 : $0 }
    let needle = Array(needle.lowercased().utf8)
    guard lower.count >= needle.count else { return 0 }
    return (0...(lower.count - needle.count)).filter { Array(lower[$0..<($0 + needle.count)]) == needle }.count
}

private func jsonObject(_ bytes: some Sequence<UInt8>) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
}

private func address(_ buffer: ByteBuffer) -> UInt {
    buffer.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress.map { Int(bitPattern: $0) } ?? 0) }
}

@Suite("IframeEncoding and Message frames")
struct IframeEncodingTests {
    static let scriptStart = Array("<script>c(".utf8)
    static let scriptEnd = Array(")</script>\n".utf8)

    /// Payloads that would break out of a `<script>` element, a JavaScript string or JSON if written raw.
    static let hostilePayloads: [String] = [
        "plain",
        "",
        "</script><script>alert(1)</script>",
        "</SCRIPT>",
        "</script ",
        "</scrip",
        "<!-- <script>",
        "<!--",
        "-->",
        "\"",
        "\\",
        "\\\"",
        "a\nb\r\nc\rd",
        "\u{2028}",
        "\u{2029}",
        "line\u{2028}sep\u{2029}para",
        "é€😀中文",
        "&",
        "&lt;/script&gt;",
        "\u{0}\u{1F}\u{7F}\t",
        "]]>",
        "{\"data\":\"nested\"}",
        String(repeating: "</script>", count: 1_000),
    ]

    // MARK: Message chunk

    @Test("a message's iframe chunk is one valid HTTP chunk: <script>c(<message object>)</script>", arguments: hostilePayloads)
    func messageChunk(_ payload: String) throws {
        let message = try makeMessage(id: 42, channel: "news", payload: payload)
        let chunk = bytes(message.frame(.iframeChunk))
        let (chunks, ended) = try #require(readChunks(chunk), "the chunk framing is valid")
        #expect(!ended)
        #expect(chunks.count == 1)
        let data = try #require(chunks.first)
        #expect(data.starts(with: Self.scriptStart))
        #expect(Array(data.suffix(Self.scriptEnd.count)) == Self.scriptEnd)
        // The argument of c( ) is the message object, as JSON.
        let json = Array(data.dropFirst(Self.scriptStart.count).dropLast(Self.scriptEnd.count))
        #expect(json == bytes(message.wire.json))
        let object = try jsonObject(json)
        #expect(object["id"] as? String == "42")
        #expect(object["channel"] as? String == "news")
        #expect(object["data"] as? String == payload)
    }

    @Test("no payload can end the script early or start an HTML comment in it", arguments: hostilePayloads)
    func messageChunkCannotBreakOut(_ payload: String) throws {
        let message = try makeMessage(id: 7, channel: "c", payload: payload, event: payload.isEmpty ? nil : payload, contentType: "text/html; x=\"</script>\"")
        let data = try #require(readChunks(bytes(message.frame(.iframeChunk)))?.chunks.first)
        #expect(occurrences(of: "</script", in: data) == 1, "only the closing tag")
        #expect(Array(data.suffix(Self.scriptEnd.count)) == Self.scriptEnd, "and it is at the end")
        #expect(occurrences(of: "<script", in: data) == 1, "only the opening tag")
        #expect(occurrences(of: "<!--", in: data) == 0)
        // No raw line or paragraph separators either (they end a JavaScript string in older engines).
        let text = String(decoding: data, as: UTF8.self)
        #expect(!text.unicodeScalars.contains { $0 == "\u{2028}" || $0 == "\u{2029}" })
        let object = try jsonObject(data.dropFirst(Self.scriptStart.count).dropLast(Self.scriptEnd.count))
        #expect(object["data"] as? String == payload)
        #expect(object["event"] as? String == (payload.isEmpty ? nil : payload))
        #expect(object["content_type"] as? String == "text/html; x=\"</script>\"")
    }

    @Test("the chunk size is the exact byte count in hex, for small and large messages", arguments: [0, 1, 100, 4_000, 70_000])
    func chunkSize(_ payloadBytes: Int) throws {
        let message = try makeMessage(id: 1, byteCount: payloadBytes)
        let chunk = bytes(message.frame(.iframeChunk))
        let lineEnd = try #require(chunk.firstIndex(of: 0x0D))
        let size = try #require(Int(String(decoding: chunk[..<lineEnd], as: UTF8.self), radix: 16))
        // {"id":"1", (10) "channel":"news", (17) "data":" (8) bbb… (n) "} (2) is 37 + n bytes; the script around
        // it adds 21: <script>c( (10) and )</script>\n (11).
        #expect(bytes(message.wire.json).count == 37 + payloadBytes)
        #expect(size == 37 + payloadBytes + 21)
        #expect(chunk.count == lineEnd + 2 + size + 2)
        #expect(Array(chunk.suffix(2)) == [0x0D, 0x0A])
    }

    // MARK: WebSocket text frame

    @Test("a message's WebSocket text frame is one final unmasked text frame holding the message object", arguments: hostilePayloads)
    func webSocketText(_ payload: String) throws {
        let message = try makeMessage(id: 9, channel: "room", payload: payload, event: "e")
        let frame = bytes(message.frame(.webSocketText))
        #expect(frame.first == 0x81, "FIN and opcode 1 (text)")
        let lengthByte = frame[1]
        #expect(lengthByte & 0x80 == 0, "a server frame is not masked")
        let (length, headerLength): (Int, Int)
        switch lengthByte {
        case 126: (length, headerLength) = (Int(frame[2]) << 8 | Int(frame[3]), 4)
        case 127: (length, headerLength) = (frame[2..<10].reduce(0) { $0 << 8 | Int($1) }, 10)
        default: (length, headerLength) = (Int(lengthByte), 2)
        }
        #expect(frame.count == headerLength + length)
        let body = Array(frame.dropFirst(headerLength))
        #expect(String(validating: body, as: UTF8.self) != nil, "a text frame is UTF-8")
        let object = try jsonObject(body)
        #expect(Set(object.keys) == ["id", "channel", "event", "data"])
        #expect(object["id"] as? String == "9")
        #expect(object["channel"] as? String == "room")
        #expect(object["event"] as? String == "e")
        #expect(object["data"] as? String == payload)
    }

    // MARK: Sharing

    @Test("every frame format is rendered once and shared: repeated calls return the same storage")
    func framesAreShared() throws {
        let message = try makeMessage(id: 3, payload: "shared <&>", event: "ev")
        // Every buffer is held at once, so a second rendering could not reuse a freed block's address.
        var held: [WireFormat: [ByteBuffer]] = [:]
        for format in WireFormat.allCases {
            held[format] = [message.frame(format), message.frame(format), message.frame(format)]
        }
        for (format, buffers) in held {
            #expect(Set(buffers.map(address)).count == 1, "one storage for \(format)")
            #expect(Set(buffers.map(bytes)).count == 1)
        }
        // The formats are distinct renderings.
        let firsts = WireFormat.allCases.map { address(held[$0]![0]) }
        #expect(Set(firsts).count == WireFormat.allCases.count)
        // The SSE and NDJSON frames are the message's wire encodings.
        #expect(bytes(message.frame(.sse)) == bytes(message.wire.sse))
        #expect(bytes(message.frame(.ndjsonLine)) == bytes(message.wire.jsonLine))
        #expect(bytes(message.wire.jsonLine) == bytes(message.wire.json) + [0x0A])
    }

    @Test("a first use on many threads at once yields one shared frame per format")
    func concurrentFirstUse() async throws {
        let messages = try (0..<500).map { try makeMessage(id: UInt64($0 + 1), payload: "p\($0) </script>") }
        let results = await withTaskGroup(of: [[UInt]].self) { group in
            for _ in 0..<8 {
                group.addTask {
                    messages.map { message in [address(message.frame(.iframeChunk)), address(message.frame(.webSocketText))] }
                }
            }
            var all: [[[UInt]]] = []
            for await result in group { all.append(result) }
            return all
        }
        for index in messages.indices {
            #expect(Set(results.map { $0[index][0] }).count == 1, "one iframe chunk for message \(index)")
            #expect(Set(results.map { $0[index][1] }).count == 1, "one WebSocket frame for message \(index)")
        }
    }

    // MARK: MessageWire.json(cursor:suffix:)

    @Test("json(cursor:) is the message object with the cursor as its id")
    func jsonWithCursor() throws {
        let message = try makeMessage(id: 17, channel: "b", payload: "x\"</script>", event: "up", contentType: "text/plain")
        let rendered = bytes(message.wire.json(cursor: "3.17"))
        let object = try jsonObject(rendered)
        #expect(Set(object.keys) == ["id", "channel", "event", "content_type", "data"])
        #expect(object["id"] as? String == "3.17")
        #expect(object["channel"] as? String == "b")
        #expect(object["event"] as? String == "up")
        #expect(object["content_type"] as? String == "text/plain")
        #expect(object["data"] as? String == "x\"</script>")
        // With the id the message's own, it is the shared object byte for byte.
        #expect(bytes(message.wire.json(cursor: "17")) == bytes(message.wire.json))
    }

    @Test("json(cursor:suffix:) appends the suffix after the object", arguments: ["\n", ",", ")</script>\n"] as [StaticString])
    func jsonWithSuffix(_ suffix: StaticString) throws {
        let message = try makeMessage(id: 5, channel: "a", payload: "data")
        let rendered = bytes(message.wire.json(cursor: "1.5", suffix: suffix))
        let suffixBytes = Array(suffix.description.utf8)
        #expect(Array(rendered.suffix(suffixBytes.count)) == suffixBytes)
        let object = try jsonObject(rendered.dropLast(suffixBytes.count))
        #expect(object["id"] as? String == "1.5")
        #expect(object["data"] as? String == "data")
    }

    // MARK: Document, scripts and chunks

    @Test("a same-origin document calls the parent's callback")
    func documentStartCallback() throws {
        let callback = try JavaScriptCallback(validating: "App.comet.receive")
        let document = text(IframeEncoding.documentStart(delivery: .callback(callback), padding: 0))
        #expect(document.hasPrefix("<!DOCTYPE html>"))
        #expect(document.contains("<meta charset=\"utf-8\">"))
        #expect(document.contains("<script>var c=function(m){parent.App.comet.receive(m)};</script>"))
        #expect(document.hasSuffix("</script>\n"))
        #expect(occurrences(of: "<script", in: Array(document.utf8)) == 1)
        #expect(IframeEncoding.defaultCallback.name == "comet_message")
    }

    @Test(
        "a cross-origin document posts to the parent with the origin as a JavaScript string that cannot break out",
        arguments: [
            "https://app.example.com",
            "http://localhost:3000",
            "https://evil.example\"),alert(1),(\"",
            "https://x</script><script>alert(1)</script>",
            "https://x<!--",
            "https://x\\\"",
            "https://x\u{2028}\u{2029}\n",
            "https://exämple.com",
            "'single'&amp;",
        ]
    )
    func documentStartPostMessage(_ origin: String) throws {
        let document = bytes(IframeEncoding.documentStart(delivery: .postMessage(origin: origin), padding: 0))
        let prefix = Array("<script>var c=function(m){parent.postMessage(m,".utf8)
        let suffix = Array(")};</script>\n".utf8)
        #expect(occurrences(of: "</script", in: document) == 1)
        #expect(occurrences(of: "<script", in: document) == 1)
        #expect(occurrences(of: "<!--", in: document) == 0)
        #expect(Array(document.suffix(suffix.count)) == suffix)
        let start = try #require((0...(document.count - prefix.count)).first { Array(document[$0..<($0 + prefix.count)]) == prefix })
        let argument = Array(document[(start + prefix.count)..<(document.count - suffix.count)])
        // The argument is one JSON string (JSON strings are JavaScript strings) that decodes to the origin.
        #expect(argument.first == UInt8(ascii: "\""))
        let decoded = try JSONSerialization.jsonObject(with: Data(argument), options: .fragmentsAllowed) as? String
        #expect(decoded == origin)
        let argumentText = String(decoding: argument, as: UTF8.self)
        #expect(!argumentText.unicodeScalars.contains { $0 == "\u{2028}" || $0 == "\u{2029}" || $0 == "\n" })
    }

    @Test("padding is exactly that many spaces on a line of their own", arguments: [1, 2, 1024, 4096])
    func padding(_ count: Int) throws {
        let callback = try JavaScriptCallback(validating: "cb")
        let withPadding = bytes(IframeEncoding.documentStart(delivery: .callback(callback), padding: count))
        let without = bytes(IframeEncoding.documentStart(delivery: .callback(callback), padding: 0))
        #expect(withPadding.count == without.count + count + 1)
        #expect(withPadding.filter { $0 == UInt8(ascii: " ") }.count == without.filter { $0 == UInt8(ascii: " ") }.count + count)
        // The padding line sits right before the script.
        let tail = Array("\n".utf8) + [UInt8](repeating: UInt8(ascii: " "), count: count) + Array("\n<script>".utf8)
        let scriptStart = try #require((0...(withPadding.count - 8)).first { Array(withPadding[$0..<($0 + 8)]) == Array("<script>".utf8) })
        #expect(Array(withPadding[(scriptStart - tail.count + 8)..<(scriptStart + 8)]) == tail)
    }

    @Test("script(json:) and scriptChunk(json:)")
    func scripts() throws {
        #expect(text(IframeEncoding.script(json: ByteBuffer(string: "{\"a\":1}"))) == "<script>c({\"a\":1})</script>\n")
        let chunk = try #require(readChunks(bytes(IframeEncoding.scriptChunk(json: "{\"a\":1}"))))
        #expect(chunk.chunks == [Array("<script>c({\"a\":1})</script>\n".utf8)])
        #expect(!chunk.ended)
    }

    @Test("the heartbeat chunk calls c with {\"heartbeat\":true}")
    func heartbeat() throws {
        let chunk = bytes(IframeEncoding.heartbeat)
        // "<script>c({"heartbeat":true})</script>\n" is 10 + 18 + 11 = 39 = 0x27 bytes.
        #expect(chunk == Array("27\r\n<script>c({\"heartbeat\":true})</script>\n\r\n".utf8))
        let data = try #require(readChunks(chunk)?.chunks.first)
        let object = try jsonObject(data.dropFirst(Self.scriptStart.count).dropLast(Self.scriptEnd.count))
        #expect(object["heartbeat"] as? Bool == true)
    }

    @Test("writeChunk frames any content; lastChunk and end close the body")
    func chunks() throws {
        for size in [1, 15, 16, 255, 256, 4096, 65_537] {
            var chunk = ByteBuffer()
            IframeEncoding.writeChunk(ByteBuffer(repeating: 0x41, count: size), into: &chunk)
            let read = try #require(readChunks(bytes(chunk)))
            #expect(read.chunks == [[UInt8](repeating: 0x41, count: size)])
            #expect(text(chunk).hasPrefix(String(size, radix: 16) + "\r\n"))
        }
        var sizeLine = ByteBuffer()
        IframeEncoding.writeChunkSize(0x1F, into: &sizeLine)
        #expect(text(sizeLine).lowercased() == "1f\r\n")
        #expect(text(IframeEncoding.lastChunk) == "0\r\n\r\n")
        let end = try #require(readChunks(bytes(IframeEncoding.end)))
        #expect(end.ended)
        #expect(end.chunks == [Array("</body></html>\n".utf8)])
    }

    @Test("a whole document of chunks reads back as the document and its scripts")
    func wholeDocument() throws {
        let callback = try JavaScriptCallback(validating: "cb")
        var body = ByteBuffer()
        IframeEncoding.writeChunk(IframeEncoding.documentStart(delivery: .callback(callback), padding: 16), into: &body)
        let messages = try (1...3).map { try makeMessage(id: UInt64($0), payload: "m\($0)</script>") }
        for message in messages { body.writeImmutableBuffer(message.frame(.iframeChunk)) }
        body.writeImmutableBuffer(IframeEncoding.heartbeat)
        body.writeImmutableBuffer(IframeEncoding.end)
        let read = try #require(readChunks(bytes(body)))
        #expect(read.ended)
        #expect(read.chunks.count == 6)
        let html = read.chunks.flatMap { $0 }
        #expect(occurrences(of: "<script", in: html) == 5)
        #expect(occurrences(of: "</script", in: html) == 5)
    }
}
