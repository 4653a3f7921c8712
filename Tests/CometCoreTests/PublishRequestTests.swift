import CometCore
import NIOCore
import Testing

@Suite("PublishRequest")
struct PublishRequestTests {
    // MARK: event names

    @Test("valid event names", arguments: ["update", "a", "A-Z_0.9:x", String(repeating: "e", count: 64), "Gap", "closed"])
    func validEvent(_ name: String) throws {
        #expect(try PublishRequest.validateEvent(name) == name)
    }

    @Test(
        "invalid event names",
        arguments: ["", String(repeating: "e", count: 65), "a b", "a@b", "a~b", "a\nb", "a\rdata: x", "a/b", "é", "a,b", "\u{0}"]
    )
    func invalidEvent(_ name: String) {
        expectGatewayError(.badRequest) { _ = try PublishRequest.validateEvent(name) }
    }

    @Test("reserved event names are rejected", arguments: ["gap", "close", "reconnect"])
    func reservedEvent(_ name: String) {
        #expect(PublishRequest.reservedEventNames.contains(name))
        expectGatewayError(.badRequest) { _ = try PublishRequest.validateEvent(name) }
    }

    // MARK: content types

    @Test("valid content types", arguments: ["application/json", "text/plain; charset=\"utf-8\"", "", String(repeating: "x", count: 200), " ~"])
    func validContentType(_ value: String) throws {
        #expect(try PublishRequest.validateContentType(value) == value)
    }

    @Test(
        "invalid content types",
        arguments: [String(repeating: "x", count: 201), "text/plain\r\nX-Injected: 1", "a\tb", "\u{7F}", "tëxt/plain", "\u{0}"]
    )
    func invalidContentType(_ value: String) {
        expectGatewayError(.badRequest) { _ = try PublishRequest.validateContentType(value) }
    }

    // MARK: payloads

    @Test("valid UTF-8 payloads pass", arguments: ["", "hello", "é€😀", "\u{0}", "line\r\n"])
    func validPayload(_ payload: String) {
        #expect(throws: Never.self) { try PublishRequest.validatePayload(ByteBuffer(string: payload)) }
    }

    @Test(
        "invalid UTF-8 payloads are 415",
        arguments: [[0xFF], [0x80], [0xC3], [0xC3, 0x28], [0xE2, 0x82], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], Array("ok".utf8) + [0xFE]] as [[UInt8]]
    )
    func invalidPayload(_ payload: [UInt8]) {
        expectGatewayError(.unsupportedMediaType) { try PublishRequest.validatePayload(ByteBuffer(bytes: payload)) }
    }

    @Test("only the readable bytes of a payload are validated")
    func payloadReadableBytes() {
        var buffer = ByteBuffer(bytes: [0xFF, 0xFE] + Array("fine".utf8))
        expectGatewayError(.unsupportedMediaType) { try PublishRequest.validatePayload(buffer) }
        buffer.moveReaderIndex(forwardBy: 2)
        #expect(throws: Never.self) { try PublishRequest.validatePayload(buffer) }
    }

    // MARK: single

    @Test("single builds a draft")
    func single() throws {
        let draft = try PublishRequest.single(
            channel: "news",
            event: "update",
            contentType: "application/json",
            body: ByteBuffer(string: "{}"),
            maxChannelNameLength: 128
        )
        #expect(draft.channel.rawValue == "news")
        #expect(draft.event == "update")
        #expect(draft.contentType == "application/json")
        #expect(text(draft.data) == "{}")
    }

    @Test("single: an empty event name means none")
    func singleEmptyEvent() throws {
        let draft = try PublishRequest.single(channel: "a", event: "", contentType: nil, body: ByteBuffer(), maxChannelNameLength: 128)
        #expect(draft.event == nil)
        #expect(draft.contentType == nil)
        #expect(draft.data.readableBytes == 0)
    }

    @Test("single: each bad part is rejected")
    func singleRejects() {
        let body = ByteBuffer(string: "x")
        expectGatewayError(.badRequest) {
            _ = try PublishRequest.single(channel: "a/b", event: nil, contentType: nil, body: body, maxChannelNameLength: 128)
        }
        expectGatewayError(.badRequest) {
            _ = try PublishRequest.single(channel: "abcd", event: nil, contentType: nil, body: body, maxChannelNameLength: 3)
        }
        expectGatewayError(.badRequest) {
            _ = try PublishRequest.single(channel: "a", event: "close", contentType: nil, body: body, maxChannelNameLength: 128)
        }
        expectGatewayError(.badRequest) {
            _ = try PublishRequest.single(channel: "a", event: nil, contentType: "a\nb", body: body, maxChannelNameLength: 128)
        }
        expectGatewayError(.unsupportedMediaType) {
            _ = try PublishRequest.single(channel: "a", event: nil, contentType: nil, body: ByteBuffer(bytes: [0xFF]), maxChannelNameLength: 128)
        }
    }

    // MARK: batch

    static func batch(_ json: String, maxMessages: Int = 10, maxChannelNameLength: Int = 128) throws -> [MessageDraft] {
        try PublishRequest.batch(body: ByteBuffer(string: json), maxMessages: maxMessages, maxChannelNameLength: maxChannelNameLength)
    }

    @Test("batch parses every entry in order")
    func batch() throws {
        let drafts = try Self.batch(
            #"{"messages":[{"channel":"b","data":"one"},{"channel":"a","data":"two","event":"e","content_type":"text/plain"},{"channel":"b","data":"","event":""}],"extra":1}"#
        )
        #expect(drafts.map(\.channel.rawValue) == ["b", "a", "b"])
        #expect(drafts.map { text($0.data) } == ["one", "two", ""])
        #expect(drafts.map(\.event) == [nil, "e", nil])
        #expect(drafts.map(\.contentType) == [nil, "text/plain", nil])
    }

    @Test("batch decodes JSON escapes in data")
    func batchEscapes() throws {
        let drafts = try Self.batch(#"{"messages":[{"channel":"a","data":"q\"b\\n\nu\u00e9\u2028<\ud83d\ude00"}]}"#)
        #expect(text(try #require(drafts.first).data) == "q\"b\\n\nué\u{2028}<😀")
    }

    @Test("batch size limits: at most maxMessages, at least one")
    func batchSize() throws {
        let entry = #"{"channel":"a","data":"x"}"#
        let three = #"{"messages":["# + Array(repeating: entry, count: 3).joined(separator: ",") + "]}"
        #expect(try Self.batch(three, maxMessages: 3).count == 3)
        expectGatewayError(.badRequest) { _ = try Self.batch(three, maxMessages: 2) }
        expectGatewayError(.badRequest) { _ = try Self.batch(#"{"messages":[]}"#) }
    }

    @Test(
        "malformed batches are rejected",
        arguments: [
            "", "not json", "[]", "{}", "null", #"{"messages":{}}"#, #"{"messages":"x"}"#, #"{"messages":[1]}"#,
            #"{"messages":[{"channel":"a"}]}"#, #"{"messages":[{"data":"x"}]}"#, #"{"messages":[{"channel":"a","data":1}]}"#,
            #"{"messages":[{"channel":"a","data":null}]}"#, #"{"messages":[{"channel":1,"data":"x"}]}"#,
            #"{"messages":[{"channel":"a","data":"x","event":5}]}"#, #"{"messages":[{"channel":"a","data":"x"}"#,
        ]
    )
    func malformedBatch(_ json: String) {
        expectGatewayError(.badRequest) { _ = try Self.batch(json) }
    }

    @Test("a batch whose body is not UTF-8 is rejected")
    func batchNotUTF8() {
        let body = ByteBuffer(bytes: Array(#"{"messages":[{"channel":"a","data":""#.utf8) + [0xFF] + Array(#""}]}"#.utf8))
        expectGatewayError(.badRequest) { _ = try PublishRequest.batch(body: body, maxMessages: 10, maxChannelNameLength: 128) }
    }

    @Test("one bad entry rejects the whole batch and the reason names its index")
    func batchBadEntry() {
        let cases = [
            #"{"messages":[{"channel":"ok","data":"x"},{"channel":"bad/name","data":"x"}]}"#,
            #"{"messages":[{"channel":"ok","data":"x"},{"channel":"ok","data":"x","event":"gap"}]}"#,
            #"{"messages":[{"channel":"ok","data":"x"},{"channel":"ok","data":"x","content_type":"a\nb"}]}"#,
            #"{"messages":[{"channel":"ok","data":"x"},{"channel":"toolong","data":"x"}]}"#,
        ]
        for json in cases {
            let error = expectGatewayError(.badRequest) { _ = try Self.batch(json, maxChannelNameLength: 5) }
            #expect(error?.reason.contains("messages[1]") == true, "reason: \(String(describing: error?.reason))")
        }
    }
}
