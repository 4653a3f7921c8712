import CometCore
import Testing

// Unit tests for `WebSocketCommand`: the JSON control messages a WebSocket subscriber sends.

@Suite("WebSocketCommand")
struct WebSocketCommandTests {
    static func parse(_ text: String, maxChannelNameLength: Int = 128) throws -> WebSocketCommand {
        try WebSocketCommand(parsing: text, maxChannelNameLength: maxChannelNameLength)
    }

    @Test("subscribe without a cursor subscribes live")
    func subscribeLive() throws {
        #expect(try Self.parse(#"{"type":"subscribe","channel":"news"}"#) == .subscribe(try channel("news"), nil, token: nil))
        // Whitespace, key order and unknown keys do not matter.
        #expect(try Self.parse(#" { "channel" : "news" , "extra": [1, {"x": null}], "type" : "subscribe" } "#) == .subscribe(try channel("news"), nil, token: nil))
    }

    @Test("subscribe with last_event_id resumes from that position")
    func subscribeWithCursor() throws {
        #expect(try Self.parse(#"{"type":"subscribe","channel":"news","last_event_id":"1795578601163386"}"#)
            == .subscribe(try channel("news"), Cursor(positions: [1_795_578_601_163_386]), token: nil))
        #expect(try Self.parse(#"{"type":"subscribe","channel":"a:b","last_event_id":"0"}"#) == .subscribe(try channel("a:b"), Cursor(positions: [0]), token: nil))
        #expect(try Self.parse(#"{"type":"subscribe","channel":"x","last_event_id":"18446744073709551615"}"#)
            == .subscribe(try channel("x"), Cursor(positions: [UInt64.max]), token: nil))
    }

    @Test("an empty or null last_event_id means live")
    func emptyCursor() throws {
        #expect(try Self.parse(#"{"type":"subscribe","channel":"news","last_event_id":""}"#) == .subscribe(try channel("news"), nil, token: nil))
        #expect(try Self.parse(#"{"type":"subscribe","channel":"news","last_event_id":null}"#) == .subscribe(try channel("news"), nil, token: nil))
    }

    @Test("unsubscribe")
    func unsubscribe() throws {
        #expect(try Self.parse(#"{"type":"unsubscribe","channel":"news"}"#) == .unsubscribe(try channel("news")))
        #expect(try Self.parse(#"{"channel":"room.lobby","type":"unsubscribe"}"#) == .unsubscribe(try channel("room.lobby")))
    }

    @Test("publish carries any JSON value but null as its data")
    func publish() throws {
        #expect(try Self.parse(#"{"type":"publish","channel":"news","data":{"a":[1,"x"]}}"#)
            == .publish(try channel("news"), data: .object(["a": .array([.number(1), .string("x")])])))
        #expect(try Self.parse(#"{"type":"publish","channel":"news","data":"text"}"#) == .publish(try channel("news"), data: .string("text")))
        #expect(throws: GatewayError.self) { try Self.parse(#"{"type":"publish","channel":"news"}"#) }
        #expect(throws: GatewayError.self) { try Self.parse(#"{"type":"publish","channel":"news","data":null}"#) }
    }

    @Test("JSON escapes in the strings are decoded before validation")
    func escapedStrings() throws {
        #expect(try Self.parse(#"{"type":"sub\u0073cribe","channel":"n\u0065ws"}"#) == .subscribe(try channel("news"), nil, token: nil))
    }

    @Test(
        "rejected control messages are a 400",
        arguments: [
            "",  // not JSON
            "subscribe news",
            "{",
            #"{"type":"subscribe","channel":"news""#,
            "[]",  // JSON, but not an object
            #"[{"type":"subscribe","channel":"news"}]"#,
            #""subscribe""#,
            "42",
            "null",
            #"{"channel":"news"}"#,  // no type
            #"{"type":null,"channel":"news"}"#,
            #"{"type":1,"channel":"news"}"#,
            #"{"type":"broadcast","channel":"news"}"#,  // unknown type
            #"{"type":"Subscribe","channel":"news"}"#,
            #"{"type":"","channel":"news"}"#,
            #"{"type":"subscribe"}"#,  // no channel
            #"{"type":"unsubscribe"}"#,
            #"{"type":"subscribe","channel":null}"#,
            #"{"type":"subscribe","channel":42}"#,
            #"{"type":"subscribe","channel":""}"#,  // invalid channel names
            #"{"type":"subscribe","channel":"a b"}"#,
            #"{"type":"subscribe","channel":"a/b"}"#,
            #"{"type":"subscribe","channel":"a,b"}"#,
            #"{"type":"subscribe","channel":"café"}"#,
            #"{"type":"unsubscribe","channel":"a\u0000"}"#,
            #"{"type":"subscribe","channel":"news","last_event_id":"1.2"}"#,  // a cursor of two positions
            #"{"type":"subscribe","channel":"news","last_event_id":"1.2.3"}"#,
            #"{"type":"subscribe","channel":"news","last_event_id":"x"}"#,  // malformed cursors
            #"{"type":"subscribe","channel":"news","last_event_id":"-1"}"#,
            #"{"type":"subscribe","channel":"news","last_event_id":"1."}"#,
            #"{"type":"subscribe","channel":"news","last_event_id":".1"}"#,
            #"{"type":"subscribe","channel":"news","last_event_id":" 1"}"#,
            #"{"type":"subscribe","channel":"news","last_event_id":"18446744073709551616"}"#,
            #"{"type":"subscribe","channel":"news","last_event_id":42}"#,
        ]
    )
    func rejected(_ text: String) {
        expectGatewayError(.badRequest) { _ = try Self.parse(text) }
    }

    @Test("the channel-name length limit applies")
    func channelNameLength() throws {
        #expect(try Self.parse(#"{"type":"subscribe","channel":"abcde"}"#, maxChannelNameLength: 5) == .subscribe(try channel("abcde"), nil, token: nil))
        expectGatewayError(.badRequest) { _ = try Self.parse(#"{"type":"subscribe","channel":"abcdef"}"#, maxChannelNameLength: 5) }
    }

    @Test(
        "a rejection's reason never repeats the input",
        arguments: [
            "<script>alert(1)</script>",
            #"{"type":"<script>alert(1)</script>","channel":"news"}"#,
            #"{"type":"subscribe","channel":"<script>alert(1)</script>"}"#,
            #"{"type":"subscribe","channel":"news","last_event_id":"<script>alert(1)</script>"}"#,
            #"{"type":"subscribe","channel":"news","last_event_id":"1.<script>"}"#,
            #"{"type":"subscribe","<script>alert(1)</script>":1}"#,
            #"[<script>alert(1)</script>]"#,
            #"{"type":"subscribe","channel":"news","last_event_id":"1.2"} <script>alert(1)</script>"#,
        ]
    )
    func reasonDoesNotEchoInput(_ text: String) {
        let error = expectGatewayError(.badRequest) { _ = try Self.parse(text) }
        #expect(error?.reason.contains("<script>") == false)
        #expect(error?.reason.contains("alert") == false)
    }

    @Test("A subscribe message may carry its channel token")
    func subscribeWithToken() throws {
        #expect(try Self.parse(#"{"type":"subscribe","channel":"news","token":"1.ab"}"#)
            == .subscribe(try channel("news"), nil, token: "1.ab"))
    }
}
