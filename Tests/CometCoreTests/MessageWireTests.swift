@testable import CometCore
import Dispatch
import Foundation
import Synchronization
import NIOCore
import Testing

@Suite("Message and MessageWire")
struct MessageWireTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var id: UInt64
        var channel: String
        var payload: String
        var event: String?
        var contentType: String?

        var testDescription: String {
            "id \(id), \(channel), payload \(payload.prefix(40).debugDescription), event \(String(describing: event)), type \(String(describing: contentType))"
        }
    }

    static let cases: [Case] = [
        Case(id: 1, channel: "news", payload: "hello"),
        Case(id: 0, channel: "a", payload: ""),
        Case(id: UInt64.max, channel: "user:42@host~x", payload: "max id"),
        Case(id: 1_764_000_000_123_456, channel: "room.lobby", payload: "{\"json\":true}", event: "update", contentType: "application/json"),
        Case(id: 7, channel: "lines", payload: "a\nb\r\nc\rd\n", event: "multi.line"),
        Case(id: 8, channel: "hostile", payload: "\"quotes\" \\ </script> & \u{2028}\u{2029} \u{0}\u{1F}\u{7F}", event: "e-1:x_y", contentType: "text/plain; charset=\"utf-8\""),
        Case(id: 9, channel: "sse-injection", payload: "x\n\nid: 999\nevent: close\ndata: evil\n\n"),
        Case(id: 10, channel: "unicode", payload: "é€😀中文 \u{FEFF}", contentType: "text/plain"),
        Case(id: 11, channel: "big", payload: String(repeating: "<&>\"\n", count: 2_000)),
        Case(id: 12, channel: "crlf-only", payload: "\r\n"),
    ]

    static func message(_ testCase: Case) throws -> Message {
        try makeMessage(
            id: testCase.id,
            channel: testCase.channel,
            payload: testCase.payload,
            event: testCase.event,
            contentType: testCase.contentType,
            publishedAt: 1_234
        )
    }

    @Test("the message keeps what it was created with", arguments: cases)
    func properties(_ testCase: Case) throws {
        let message = try Self.message(testCase)
        #expect(message.id == testCase.id)
        #expect(message.channel.rawValue == testCase.channel)
        #expect(message.event == testCase.event)
        #expect(message.contentType == testCase.contentType)
        #expect(message.publishedAt == 1_234)
        #expect(text(message.data) == testCase.payload)
        #expect(bytes(message.wire.data) == Array(testCase.payload.utf8))
        #expect(message.payloadByteCount == testCase.payload.utf8.count)
    }

    @Test("sse decodes to the event, the payload (LF line endings) and the id", arguments: cases)
    func sse(_ testCase: Case) throws {
        let wire = try Self.message(testCase).wire
        let parsed = SpecSSEParser.parse(bytes(wire.sse))
        #expect(parsed.events.count == 1)
        let event = try #require(parsed.events.first)
        #expect(event.type == (testCase.event ?? "message"))
        #expect(event.data == normalisingLineEndings(testCase.payload))
        #expect(event.lastEventID == String(testCase.id))
    }

    @Test("sse is sseFields followed by the id line and the blank line", arguments: cases)
    func sseFieldsArePrefix(_ testCase: Case) throws {
        let wire = try Self.message(testCase).wire
        #expect(bytes(wire.sse) == bytes(wire.sseFields) + Array("id: \(testCase.id)\n\n".utf8))
    }

    @Test("sseFields plus a multi-channel cursor decodes with that cursor as the id", arguments: cases)
    func sseFieldsWithCursor(_ testCase: Case) throws {
        let wire = try Self.message(testCase).wire
        var event = ByteBuffer()
        event.writeImmutableBuffer(wire.sseFields)
        SSEEncoding.writeIDAndEnd("5.\(testCase.id)", into: &event)
        let parsed = SpecSSEParser.parse(bytes(event))
        #expect(parsed.events.count == 1)
        #expect(parsed.events.first?.data == normalisingLineEndings(testCase.payload))
        #expect(parsed.events.first?.lastEventID == "5.\(testCase.id)")
    }

    @Test("json is an object with id, channel, data and the optional fields, and nothing else", arguments: cases)
    func json(_ testCase: Case) throws {
        let wire = try Self.message(testCase).wire
        let object = try #require(try JSONSerialization.jsonObject(with: Data(bytes(wire.json))) as? [String: Any])
        var expectedKeys: Set<String> = ["id", "channel", "data"]
        if testCase.event != nil { expectedKeys.insert("event") }
        if testCase.contentType != nil { expectedKeys.insert("content_type") }
        #expect(Set(object.keys) == expectedKeys)
        #expect(object["id"] as? String == String(testCase.id))
        #expect(object["channel"] as? String == testCase.channel)
        #expect(object["data"] as? String == testCase.payload)
        #expect(object["event"] as? String == testCase.event)
        #expect(object["content_type"] as? String == testCase.contentType)
    }

    @Test("json has no raw line breaks, so it fits on one NDJSON line", arguments: cases)
    func jsonIsOneLine(_ testCase: Case) throws {
        let json = try bytes(Self.message(testCase).wire.json)
        #expect(!json.contains(UInt8(ascii: "\n")))
        #expect(!json.contains(UInt8(ascii: "\r")))
        #expect(!String(decoding: json, as: UTF8.self).unicodeScalars.contains(where: { $0 == "\u{2028}" || $0 == "\u{2029}" }))
    }

    @Test("jsonLine is json followed by a newline", arguments: cases)
    func jsonLine(_ testCase: Case) throws {
        let wire = try Self.message(testCase).wire
        #expect(bytes(wire.jsonLine) == bytes(wire.json) + [UInt8(ascii: "\n")])
    }

    @Test("{\"id\":\" + id + jsonAfterID is json", arguments: cases)
    func jsonAfterID(_ testCase: Case) throws {
        let wire = try Self.message(testCase).wire
        #expect(Array("{\"id\":\"\(testCase.id)".utf8) + bytes(wire.jsonAfterID) == bytes(wire.json))
    }

    @Test("jsonAfterID with a multi-channel cursor is a valid object with that id", arguments: cases)
    func jsonAfterIDWithCursor(_ testCase: Case) throws {
        let wire = try Self.message(testCase).wire
        let document = Array("{\"id\":\"3.\(testCase.id)".utf8) + bytes(wire.jsonAfterID)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(document)) as? [String: Any])
        #expect(object["id"] as? String == "3.\(testCase.id)")
        #expect(object["channel"] as? String == testCase.channel)
        #expect(object["data"] as? String == testCase.payload)
    }

    @Test("a payload buffer with a moved reader index contributes only its readable bytes")
    func payloadSlice() throws {
        var data = ByteBuffer(string: "garbage\"\n<payload>")
        data.moveReaderIndex(forwardBy: "garbage\"\n".utf8.count)
        let message = Message(channel: try channel("c"), id: 5, event: nil, contentType: nil, data: data, publishedAt: 0)
        #expect(text(message.data) == "<payload>")
        #expect(message.payloadByteCount == "<payload>".utf8.count)
        let object = try JSONSerialization.jsonObject(with: Data(bytes(message.wire.json))) as? [String: Any]
        #expect(object?["data"] as? String == "<payload>")
        #expect(SpecSSEParser.parse(bytes(message.wire.sse)).events.first?.data == "<payload>")
    }

    @Test("the encodings do not change when the source buffer is reused")
    func independentOfSourceBuffer() throws {
        var data = ByteBuffer(string: "original")
        let message = Message(channel: try channel("c"), id: 1, event: nil, contentType: nil, data: data, publishedAt: 0)
        data.clear()
        data.writeString("mutated!")
        #expect(text(message.data) == "original")
        #expect(SpecSSEParser.parse(bytes(message.wire.sse)).events.first?.data == "original")
    }

    @Test("each encoding is rendered once: every read shares one storage, and the parts are slices of it")
    func renderedOnce() throws {
        let message = try Self.message(Self.cases[3])
        // The rendered parts are one object per format, kept by the message.
        #expect(message.sse === message.sse)
        #expect(message.json === message.json)
        // Every buffer handed out is held at once, so a second rendering could not reuse a freed block's address.
        let sse = [message.wire.sse, message.wire.sse, message.wire.sseFields]
        let json = [message.wire.json, message.wire.json, message.wire.jsonLine]
        #expect(Set(sse.map(Self.address)).count == 1)
        #expect(Set(json.map(Self.address)).count == 1)
        #expect(Self.address(sse[0]) != Self.address(json[0]))
    }

    @Test("a first use on many threads at once yields one encoding, the same bytes for every thread")
    func concurrentFirstUse() throws {
        let messages = try (0..<3000).map { index in
            try makeMessage(id: UInt64(index + 1), channel: "c", payload: "payload \(index) <&>\n", event: "e", contentType: nil, publishedAt: 0)
        }
        let threads = 8
        let seen = Mutex((addresses: Array(repeating: Set<UInt>(), count: messages.count),
                          texts: Array(repeating: Set<[UInt8]>(), count: messages.count)))
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            // Every thread walks the same messages in the same order, so threads running at once race to render.
            for (index, message) in messages.enumerated() {
                for buffer in [message.wire.json, message.wire.sse] {
                    let address = Self.address(buffer)
                    let content = bytes(buffer)
                    seen.withLock {
                        _ = $0.addresses[index].insert(address)
                        _ = $0.texts[index].insert(content)
                    }
                }
            }
        }
        let (addresses, texts) = seen.withLock { ($0.addresses, $0.texts) }
        for index in messages.indices {
            #expect(addresses[index].count == 2, "one storage for JSON and one for SSE")
            #expect(texts[index].count == 2)
        }
    }

    @Test("a message releases its encodings when it is released")
    func encodingsReleased() throws {
        weak var sse: SSEParts?
        weak var json: JSONParts?
        do {
            let message = try Self.message(Self.cases[0])
            sse = message.sse
            json = message.json
            #expect(sse != nil && json != nil)
        }
        #expect(sse == nil)
        #expect(json == nil)
    }

    private static func address(_ buffer: ByteBuffer) -> UInt {
        buffer.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress.map { Int(bitPattern: $0) } ?? 0) }
    }
}
