import CometCore
import Testing

@Suite("Bayeux channel names and their gateway channels")
struct BayeuxChannelTests {
    @Test("Kinds: meta, service, broadcast, one-segment and deep wildcards; round trip through the name")
    func kinds() throws {
        let cases: [(String, BayeuxChannel.Kind)] = [
            ("/meta/handshake", .meta), ("/service/echo", .service), ("/chat/room1", .broadcast),
            ("/chat/*", .wildcard), ("/chat/**", .deepWildcard), ("/a", .broadcast), ("/*", .wildcard),
            ("/**", .deepWildcard),
        ]
        for (text, kind) in cases {
            let channel = try #require(BayeuxChannel(text), "\(text)")
            #expect(channel.kind == kind, "\(text)")
            #expect(channel.description == text)
        }
    }

    @Test("Refused: no leading slash, empty segments, a dot, characters outside the alphabet, bare or inner wildcards")
    func refused() {
        for text in ["chat/room", "/", "//a", "/a//b", "/a/", "/a.b", "/a b", "/a/é", "/a/*/b", "/***", "/meta/*",
                     "/service/**", "/" + String(repeating: "a", count: 200)] {
            #expect(BayeuxChannel(text) == nil, "\(text)")
        }
    }

    @Test("/chat/room1 is the gateway channel chat.room1, and back; meta and wildcards map to none")
    func mapping() throws {
        let channel = try #require(BayeuxChannel("/chat/room1"))
        #expect(channel.gatewayChannel()?.rawValue == "chat.room1")
        #expect(BayeuxChannel(gateway: try ChannelName(validating: "chat.room1"))?.description == "/chat/room1")
        #expect(BayeuxChannel(gateway: try ChannelName(validating: "news"))?.description == "/news")
        #expect(BayeuxChannel(gateway: try ChannelName(validating: "a..b")) == nil)
        #expect(BayeuxChannel(gateway: try ChannelName(validating: "meta.connect")) == nil)
        #expect(BayeuxChannel("/meta/connect")?.gatewayChannel() == nil)
        #expect(BayeuxChannel("/chat/*")?.gatewayChannel() == nil)
    }

    @Test("Wildcards: * covers exactly one more segment, ** one or more; nothing covers meta channels")
    func matching() throws {
        let one = try #require(BayeuxChannel("/chat/*"))
        let deep = try #require(BayeuxChannel("/chat/**"))
        let exact = try #require(BayeuxChannel("/chat/room1"))
        let nested = try #require(BayeuxChannel("/chat/room1/private"))
        let other = try #require(BayeuxChannel("/news/today"))
        #expect(one.matches(exact) && !one.matches(nested) && !one.matches(other))
        #expect(deep.matches(exact) && deep.matches(nested) && !deep.matches(other))
        #expect(exact.matches(exact) && !exact.matches(nested))
        #expect(!deep.matches(try #require(BayeuxChannel("/chat"))), "the parent itself is not covered")
        let meta = try #require(BayeuxChannel("/meta/connect"))
        let any = try #require(BayeuxChannel("/meta2/**"))
        #expect(!any.matches(meta) && !exact.matches(meta))
    }
}
