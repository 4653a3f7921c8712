import CometCore
import NIOCore
import Testing

@Suite("SSEEncoding")
struct SSEEncodingTests {
    static let payloads: [String] = [
        "", "hello", "a\nb", "a\rb", "a\r\nb", "a\n", "a\r", "a\r\n", "\n", "\r", "\r\n", "\n\n", "\r\r", "\r\n\r\n",
        "a\r\r\nb", "a\n\rb", "a\n\nb", "line1\nline2\r\nline3\rline4", "\ntrailing and leading\n",
        "data: injected\n\nid: 99\n\nevent: close\nretry: 1\n", ":not a comment", " leading space", "  two spaces",
        "trailing space ", "é😀\nü\u{2028}x", "tab\there", "nul\u{0}byte", "\u{FEFF}bom first",
        String(repeating: "0123456789", count: 10_000), String(repeating: "line\n", count: 1_000),
    ]

    /// `data:` lines for `payload`, followed by the blank line that dispatches them.
    static func event(for payload: String) -> ByteBuffer {
        var buffer = ByteBuffer()
        SSEEncoding.writeDataLines(ByteBuffer(string: payload), into: &buffer)
        buffer.writeString("\n")
        return buffer
    }

    @Test("a browser decodes the payload with line endings normalised to LF", arguments: payloads)
    func decodesToPayload(_ payload: String) {
        let parsed = SpecSSEParser.parse(bytes(Self.event(for: payload)))
        #expect(parsed.events.count == 1, "exactly one event for \(payload.debugDescription)")
        #expect(parsed.events.first?.type == "message")
        #expect(parsed.events.first?.data == normalisingLineEndings(payload))
        #expect(parsed.lastEventID == "", "a payload cannot set the event id")
        #expect(parsed.retry == nil, "a payload cannot set the retry time")
    }

    @Test("one `data:` line per payload line, LF-terminated, no CR on the wire", arguments: payloads)
    func dataLineStructure(_ payload: String) {
        var buffer = ByteBuffer()
        SSEEncoding.writeDataLines(ByteBuffer(string: payload), into: &buffer)
        let output = bytes(buffer)
        #expect(!output.contains(UInt8(ascii: "\r")))
        #expect(output.last == UInt8(ascii: "\n"))
        let lines = output.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).dropLast()
        #expect(lines.count == lineCount(payload))
        let prefix = Array("data: ".utf8)
        #expect(lines.allSatisfy { $0.starts(with: prefix) }, "every line is a data line")
    }

    @Test("only the readable bytes of the payload are written")
    func readableBytesOnly() {
        var payload = ByteBuffer(string: "skip\nme|kept\nlines")
        payload.moveReaderIndex(forwardBy: "skip\nme|".utf8.count)
        var buffer = ByteBuffer()
        SSEEncoding.writeDataLines(payload, into: &buffer)
        #expect(text(buffer) == "data: kept\ndata: lines\n")
    }

    @Test("writeIDAndEnd ends an event and sets its id")
    func idAndEnd() {
        var buffer = ByteBuffer()
        SSEEncoding.writeDataLines(ByteBuffer(string: "x"), into: &buffer)
        SSEEncoding.writeIDAndEnd("17.42", into: &buffer)
        let parsed = SpecSSEParser.parse(bytes(buffer))
        #expect(parsed.events == [SpecSSEParser.Event(type: "message", data: "x", lastEventID: "17.42")])
    }

    @Test("writeIDAndEnd on its own sets the id without dispatching an event")
    func idAlone() {
        var buffer = ByteBuffer()
        SSEEncoding.writeIDAndEnd("99", into: &buffer)
        let parsed = SpecSSEParser.parse(bytes(buffer))
        #expect(parsed.events.isEmpty)
        #expect(parsed.lastEventID == "99")
    }

    @Test("retry sets the reconnection time", arguments: [0, 1, 3000, 3_600_000])
    func retry(_ milliseconds: Int) {
        let buffer = SSEEncoding.retry(milliseconds: milliseconds)
        #expect(text(buffer) == "retry: \(milliseconds)\n")
        let parsed = SpecSSEParser.parse(bytes(buffer))
        #expect(parsed.retry == milliseconds)
        #expect(parsed.events.isEmpty)
    }

    @Test("the heartbeat is a comment that dispatches nothing")
    func heartbeat() {
        let heartbeat = bytes(SSEEncoding.heartbeat)
        #expect(heartbeat.first == UInt8(ascii: ":"))
        // Between two events, the heartbeat must not change either of them.
        var stream = Self.event(for: "before")
        stream.writeImmutableBuffer(SSEEncoding.heartbeat)
        stream.writeImmutableBuffer(Self.event(for: "after"))
        let parsed = SpecSSEParser.parse(bytes(stream))
        #expect(parsed.events.map(\.data) == ["before", "after"])
        #expect(SpecSSEParser.parse(heartbeat).events.isEmpty)
        #expect(SpecSSEParser.parse(heartbeat).lastEventID == "")
    }

    @Test("a control event carries its name and JSON payload")
    func controlEvent() {
        let json = #"{"channels":["a","b"],"reason":"history"}"#
        let parsed = SpecSSEParser.parse(bytes(SSEEncoding.controlEvent("gap", json: json)))
        #expect(parsed.events == [SpecSSEParser.Event(type: "gap", data: json, lastEventID: "")])
    }

    @Test("consecutive events stay separate")
    func consecutiveEvents() {
        var stream = ByteBuffer()
        for (index, payload) in ["one\r\n", "two\n\nlines", ""].enumerated() {
            SSEEncoding.writeDataLines(ByteBuffer(string: payload), into: &stream)
            SSEEncoding.writeIDAndEnd(String(index + 1), into: &stream)
        }
        let parsed = SpecSSEParser.parse(bytes(stream))
        #expect(
            parsed.events == [
                SpecSSEParser.Event(type: "message", data: "one\n", lastEventID: "1"),
                SpecSSEParser.Event(type: "message", data: "two\n\nlines", lastEventID: "2"),
                SpecSSEParser.Event(type: "message", data: "", lastEventID: "3"),
            ]
        )
    }
}
