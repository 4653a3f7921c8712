import CometCore
import NIOCore
import Testing

@Suite("Bayeux request bodies")
struct BayeuxMessageTests {
    private func parse(_ json: String) throws(BayeuxMessage.Refusal) -> [BayeuxMessage] {
        try BayeuxMessage.parse(ByteBuffer(string: json), maxMessages: 4)
    }

    @Test("One message or a batch; fields read with their types; subscription as one name or a list")
    func messages() throws {
        let single = try self.parse(#"{"channel": "/meta/handshake", "version": "1.0", "id": "1", "supportedConnectionTypes": ["long-polling", "callback-polling"]}"#)
        #expect(single.count == 1)
        #expect(single[0].channel == "/meta/handshake")
        #expect(single[0].id == .string("1"))
        #expect(single[0].supportedConnectionTypes == ["long-polling", "callback-polling"])
        let batch = try self.parse("""
            [{"channel": "/meta/connect", "clientId": "abc", "connectionType": "long-polling", "id": 2,
              "advice": {"timeout": 0}},
             {"channel": "/meta/subscribe", "clientId": "abc", "subscription": "/chat/*", "ext": {"ack": true}},
             {"channel": "/meta/unsubscribe", "clientId": "abc", "subscription": ["/a", "/b"]},
             {"channel": "/chat/room1", "clientId": "abc", "data": {"text": "hi"}}]
            """)
        #expect(batch.map(\.channel) == ["/meta/connect", "/meta/subscribe", "/meta/unsubscribe", "/chat/room1"])
        #expect(batch[0].id == .number(2) && batch[0].clientID == "abc" && batch[0].connectionType == "long-polling")
        #expect(batch[0].advice?["timeout"] == .number(0))
        #expect(batch[1].subscriptions == ["/chat/*"] && batch[1].ext?["ack"] == .bool(true))
        #expect(batch[2].subscriptions == ["/a", "/b"])
        #expect(batch[3].data == .object(["text": .string("hi")]))
    }

    @Test("Keys are matched exactly: an escaped key means the same field, a near-miss or a longer key is another field")
    func keys() throws {
        let escaped = try self.parse(#"{"chann\u0065l": "/meta/connect", "client\u0049d": "abc", "channelX": 1, "i": 2, "idx": 3}"#)
        #expect(escaped[0].channel == "/meta/connect")
        #expect(escaped[0].clientID == "abc")
        #expect(escaped[0].id == nil, "'i' and 'idx' are not 'id'")
        #expect(throws: BayeuxMessage.Refusal.self) { try self.parse(#"{"Channel": "/meta/connect"}"#) }
    }

    @Test("Bad bodies are refused with a reason")
    func refusals() {
        func reason(_ json: String) -> String? {
            do {
                _ = try self.parse(json)
                return nil
            } catch {
                return error.message
            }
        }
        #expect(reason("nope") == "body is not JSON (or is nested deeper than 32 levels)")
        #expect(reason("42") == "body is not a Bayeux message or an array of them")
        #expect(reason("[]") == "no message")
        #expect(reason(#"[{"channel":"/a"},{"channel":"/a"},{"channel":"/a"},{"channel":"/a"},{"channel":"/a"}]"#)
            == "more than 4 messages in one request")
        #expect(reason(#"[{"id": "1"}]"#) == "a message has no channel")
        #expect(reason(#"[3]"#) == "a message is not an object")
        #expect(reason(#"{"channel": "/a", "clientId": 5}"#) == "'clientId' is not a string")
        #expect(reason(#"{"channel": "/a", "subscription": [1]}"#) == "'subscription' holds a non-string")
        #expect(reason(#"{"channel": "/a", "id": {}}"#) == "'id' is not a string or a number")
        #expect(reason(#"{"channel": "/a", "advice": 1}"#) == "'advice' is not an object")
    }
}
