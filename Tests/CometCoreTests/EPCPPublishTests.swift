import CometCore
import NIOCore
import Testing

@Suite("EPCP publish (Pushpin's /publish/)")
struct EPCPPublishTests {
    private func items(_ json: String) throws(EPCPPublish.Refusal) -> [EPCPPublish.Item] {
        try EPCPPublish.parse(body: ByteBuffer(string: json), maxItems: 10, maxChannelNameLength: 64)
    }

    private func parse(_ json: String) throws(EPCPPublish.Refusal) -> [MessageDraft] {
        try self.items(json).compactMap(\.draft)
    }

    private func refusal(_ json: String) -> String? {
        do {
            _ = try self.parse(json)
            return nil
        } catch {
            return error.message
        }
    }

    @Test("Each item becomes a message: http-stream content first, then ws-message, then the http-response body")
    func mapping() throws {
        let drafts = try self.parse("""
            {"items": [
              {"channel": "a", "id": "1", "prev-id": "0", "formats": {"http-stream": {"content": "s"},
                "ws-message": {"content": "w"}, "http-response": {"body": "r"}}},
              {"channel": "b", "formats": {"ws-message": {"content": "w"}, "http-response": {"body": "r"}}},
              {"channel": "c", "formats": {"http-response": {"body": "r", "headers": {"Content-Type": "text/html"}}}},
              {"channel": "d", "http-stream": {"content-bin": "aMOp"}},
              {"channel": "e", "formats": {"http-response": {"code": 204}}}
            ]}
            """)
        #expect(drafts.map(\.channel.rawValue) == ["a", "b", "c", "d", "e"])
        #expect(drafts.map { String(buffer: $0.data) } == ["s", "w", "r", "hé", ""])
        #expect(drafts[2].contentType == "text/html")
        #expect(drafts[0].contentType == nil)
    }

    @Test("Bad bodies get Pushpin's texts")
    func refusals() {
        #expect(self.refusal("nope") == "Body is not valid JSON.")
        #expect(self.refusal("[1]") == "Invalid format.")
        #expect(self.refusal("{}") == "Invalid format: object does not contain 'items'")
        #expect(self.refusal(#"{"items": {}}"#) == "Invalid format: object contains 'items' with wrong type")
        #expect(self.refusal(#"{"items": [3]}"#) == "Invalid format: publish item object is not an object")
        #expect(self.refusal(#"{"items": [{"http-stream": {"content": "x"}}]}"#)
            == "Invalid format: publish item object does not contain 'channel'")
        #expect(self.refusal(#"{"items": [{"channel": 5, "http-stream": {"content": "x"}}]}"#)
            == "Invalid format: publish item object contains 'channel' with wrong type")
        #expect(self.refusal(#"{"items": [{"channel": "c", "id": 5, "http-stream": {"content": "x"}}]}"#)
            == "Invalid format: publish item object contains 'id' with wrong type")
        #expect(self.refusal(#"{"items": [{"channel": "c"}]}"#) == "Invalid format: no formats specified")
        #expect(self.refusal(#"{"items": [{"channel": "c", "formats": {"http-stream": {}}}]}"#)
            == "Invalid format: 'http-stream' does not contain 'content' or 'content-bin'")
        #expect(self.refusal(#"{"items": [{"channel": "c", "formats": {"http-stream": {"content": 1}}}]}"#)
            == "Invalid format: 'http-stream' contains 'content' with wrong type")
        #expect(self.refusal(#"{"items": [{"channel": "c", "formats": {"http-stream": {"action": "hint"}}}]}"#)
            == "Invalid format: 'http-stream' action 'hint' is not supported by this gateway")
        #expect(self.refusal(#"{"items": [{"channel": "bad name", "formats": {"ws-message": {"content": "x"}}}]}"#)?
            .hasPrefix("Invalid format: publish item object contains 'channel' with an invalid name") == true)
        #expect(self.refusal(#"{"items": [{"channel": "c", "formats": {"ws-message": {"content-bin": "/w=="}}}]}"#)
            == "Invalid format: publish item object content is not UTF-8 (the gateway's messages are text)")
        let many = "{\"items\": [" + Array(repeating: #"{"channel": "c", "ws-message": {"content": "x"}}"#, count: 11)
            .joined(separator: ",") + "]}"
        #expect(self.refusal(many) == "Invalid format: more than 10 items (limits.max_batch_messages)")
    }

    @Test("One bad item refuses the whole body")
    func allOrNothing() {
        #expect(self.refusal(#"{"items": [{"channel": "ok", "ws-message": {"content": "x"}}, {"channel": "c"}]}"#)
            == "Invalid format: no formats specified")
    }

    @Test("GRIP formats are kept for holds: the id, the http-response with its code, reason and headers, the http-stream content")
    func gripFormats() throws {
        let drafts = try self.parse("""
            {"items": [
              {"channel": "a", "id": "7", "formats": {"http-stream": {"content": "s"},
                "http-response": {"code": 201, "reason": "Made", "headers": [["X-A", "1"], ["Content-Type", "text/x"]],
                                  "body-bin": "cg=="}}},
              {"channel": "b", "formats": {"ws-message": {"content": "w"}}}
            ]}
            """)
        let first = try #require(drafts[0].grip)
        #expect(first.id == "7")
        #expect(first.streamContent.map { String(buffer: $0) } == "s")
        let response = try #require(first.response)
        #expect(response.status == 201 && response.reason == "Made" && response.body == Array("r".utf8))
        #expect(response.headers.map(\.name) == ["X-A", "Content-Type"])
        #expect(drafts[0].contentType == "text/x")
        let second = try #require(drafts[1].grip)
        #expect(second.id == nil && second.response == nil && second.streamContent == nil)
    }

    @Test("http-stream action close ends streams: alone it publishes nothing, beside other formats it follows their message")
    func closeAction() throws {
        let items = try self.items("""
            {"items": [
              {"channel": "a", "formats": {"http-stream": {"action": "close"}}},
              {"channel": "b", "formats": {"http-stream": {"action": "close"}, "http-response": {"body": "bye"}}},
              {"channel": "c", "formats": {"http-stream": {"content": "x"}}}
            ]}
            """)
        #expect(items.map(\.closesStreams) == [true, true, false])
        #expect(items[0].draft == nil)
        #expect(items[1].draft.map { String(buffer: $0.data) } == "bye")
        #expect(items[1].draft?.grip?.streamContent == nil)
        #expect(items[2].draft?.grip?.streamContent.map { String(buffer: $0) } == "x")
    }

    @Test("An http-response that could split a response is refused")
    func responseInjection() {
        #expect(self.refusal(#"{"items": [{"channel": "c", "formats": {"http-response": {"headers": {"X-A": "1\r\nX-B: 2"}}}}]}"#)
            == "Invalid format: 'http-response' header value holds CR, LF or NUL")
        #expect(self.refusal(#"{"items": [{"channel": "c", "formats": {"http-response": {"headers": {"X A": "1"}}}}]}"#)
            == "Invalid format: 'http-response' header name is not a token")
        #expect(self.refusal(#"{"items": [{"channel": "c", "formats": {"http-response": {"reason": "OK\r\nX: y"}}}]}"#)
            == "Invalid format: 'http-response' contains 'reason' with control characters")
        #expect(self.refusal(#"{"items": [{"channel": "c", "formats": {"http-response": {"code": 20}}}]}"#)
            == "Invalid format: 'http-response' contains 'code' with wrong type")
    }

    @Test("ws-message content is the data WebSocket subscribers get; every other transport gets the http-stream content")
    func webSocketData() throws {
        let draft = try #require(try self.parse("""
            {"items": [{"channel": "a", "formats": {"http-stream": {"content": "for streams"}, "ws-message": {"content": "for sockets"}}}]}
            """).first)
        let message = Message(channel: draft.channel, id: 5, event: nil, contentType: nil, data: draft.data,
                              publishedAt: 1, grip: draft.grip)
        let frame = message.frame(.webSocketText)
        #expect(String(decoding: frame.readableBytesView.dropFirst(2), as: UTF8.self)
            == #"{"id":"5","channel":"a","data":"for sockets"}"#)
        #expect(String(buffer: message.frame(.ndjsonLine)) == #"{"id":"5","channel":"a","data":"for streams"}"# + "\n")
        #expect(String(buffer: message.frame(.gripStreamChunk)) == "b\r\nfor streams\r\n")
    }
}
