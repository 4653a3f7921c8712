import CometCore
import Foundation
import NIOCore
import Testing

@Suite("Bayeux encoding, channel patterns and the JSON syntax check")
struct BayeuxEncodingTests {
    private func message(_ channel: String, _ data: String, type: String?) throws -> Message {
        Message(channel: try ChannelName(validating: channel), id: 42, event: nil, contentType: type,
                data: ByteBuffer(string: data), publishedAt: 0)
    }

    @Test("A delivery: the Bayeux channel, the id as a string, JSON data embedded when the publish was valid application/json")
    func event() throws {
        let json = BayeuxEncoding.event(try self.message("chat.room1", #"{"a": [1, "x"]}"#, type: "Application/JSON; charset=utf-8"))
        #expect(String(buffer: json) == #"{"channel":"/chat/room1","id":"42","data":{"a": [1, "x"]}}"#)
        let scalar = BayeuxEncoding.event(try self.message("n", "17", type: "application/json"))
        #expect(String(buffer: scalar) == #"{"channel":"/n","id":"42","data":17}"#)
        let text = BayeuxEncoding.event(try self.message("chat", "</script>\u{2028}\"", type: "text/plain"))
        #expect(String(buffer: text) == #"{"channel":"/chat","id":"42","data":"\u003c/script\u003e\u2028\""}"#)
        let broken = BayeuxEncoding.event(try self.message("chat", #"{"a":"#, type: "application/json"))
        #expect(String(buffer: broken).hasSuffix(#""data":"{\"a\":"}"#))
        let untyped = BayeuxEncoding.event(try self.message("chat", "[1]", type: nil))
        #expect(String(buffer: untyped).hasSuffix(#""data":"[1]"}"#))
        for unmapped in ["a..b", ".a", "a.", "meta.connect", "service.echo"] {
            #expect(BayeuxEncoding.event(try self.message(unmapped, "x", type: nil)).readableBytes == 0, "\(unmapped)")
        }
    }

    @Test("A reply writes its fields in order and escapes what a client gave")
    func reply() throws {
        var reply = BayeuxReply.failure("/meta/subscribe", id: .number(3), clientID: "abc", error: "400:</x>:bad")
        reply.subscription = .array([.string("/a"), .string("/b")])
        let text = String(buffer: reply.bytes)
        #expect(text == #"{"channel":"/meta/subscribe","successful":false,"id":3,"clientId":"abc","error":"400:\u003c/x\u003e:bad","subscription":["/a","/b"]}"#)
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(parsed["error"] as? String == "400:</x>:bad")
    }

    @Test("Patterns: * one segment below the prefix, ** any depth, the root forms; never empty segments")
    func patterns() throws {
        func matches(_ pattern: ChannelPattern, _ names: [String]) throws -> [Bool] {
            try names.map { pattern.matches(try ChannelName(validating: $0)) }
        }
        let chat = try ChannelName(validating: "chat")
        let one = ChannelPattern(prefix: chat, deep: false)
        let deep = ChannelPattern(prefix: chat, deep: true)
        let names = ["chat.a", "chat.a.b", "chat", "chatx.a", "chat.", "chat..a", "chat.a..b", "chat.a.", "news.a"]
        #expect(try matches(one, names) == [true, false, false, false, false, false, false, false, false])
        #expect(try matches(deep, names) == [true, true, false, false, false, false, false, false, false])
        let roots = ["news", "news.a", "news.a.b", ".a", "a..b"]
        #expect(try matches(ChannelPattern(prefix: nil, deep: false), roots) == [true, false, false, false, false])
        #expect(try matches(ChannelPattern(prefix: nil, deep: true), roots) == [true, true, true, false, false])
        #expect(one.description == "chat.*" && deep.description == "chat.**")
        #expect(ChannelPattern(prefix: nil, deep: true).description == "**")
    }

    @Test("JSON syntax: values of every kind pass; malformed text, trailing bytes and deep nesting fail")
    func syntax() {
        func valid(_ text: String, depth: Int = 64) -> Bool {
            var text = text
            return text.withUTF8 { JSONSyntax.isValid(UnsafeRawBufferPointer($0), maxDepth: depth) }
        }
        for good in ["0", "-1.5e+10", "true", "null", #""a\"\\\/\b\f\n\r\t\u00e9""#, " [ 1 , {} , [] ] ", #"{"a":{"b":[null]}}"#] {
            #expect(valid(good), "\(good)")
        }
        for bad in ["", "01", "1.", "-", "+1", "tru", "[1,]", "{\"a\"}", "{\"a\":1,}", "[1] 2", "\"\u{01}\"", "\"\\x\"",
                    "\"\\u12\"", "{a:1}", "'a'", "[", "\"open"] {
            #expect(!valid(bad), "\(bad)")
        }
        #expect(valid(String(repeating: "[", count: 10) + String(repeating: "]", count: 10), depth: 10))
        #expect(!valid(String(repeating: "[", count: 11) + String(repeating: "]", count: 11), depth: 10))
    }
}
