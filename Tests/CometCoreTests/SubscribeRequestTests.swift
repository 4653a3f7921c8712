import CometCore
import Testing

@Suite("SubscribeRequest")
struct SubscribeRequestTests {
    static func request(
        _ uri: String,
        accept: String? = nil,
        lastEventID: String? = nil,
        limits: SubscribeLimits = SubscribeLimits()
    ) throws -> SubscribeRequest {
        try SubscribeRequest(target: RequestTarget(parsing: uri), accept: accept, lastEventID: lastEventID, limits: limits)
    }

    static func names(_ request: SubscribeRequest) -> [String] {
        request.channels.map(\.rawValue)
    }

    @Test("default limits")
    func defaultLimits() {
        let limits = SubscribeLimits()
        #expect(limits.maxChannels == 16)
        #expect(limits.maxChannelNameLength == 128)
        #expect(limits.pollTimeout == 30)
    }

    // MARK: channels

    @Test("one channel, default poll transport, no cursor, default timeout")
    func singleChannel() throws {
        let request = try Self.request("/sub/news")
        #expect(Self.names(request) == ["news"])
        #expect(request.transport == .poll)
        #expect(request.cursor == nil)
        #expect(request.pollTimeout == 30)
    }

    @Test("channels are sorted and deduplicated")
    func sortedAndDeduplicated() throws {
        let request = try Self.request("/sub/zeta,alpha,mid,alpha,zeta,Beta")
        #expect(Self.names(request) == ["Beta", "alpha", "mid", "zeta"])
        #expect(Self.names(try Self.request("/sub/x,x,x")) == ["x"])
    }

    @Test("an encoded comma separates channels; other escapes decode into the name")
    func encodedNames() throws {
        #expect(Self.names(try Self.request("/sub/b%2Ca")) == ["a", "b"])
        #expect(Self.names(try Self.request("/sub/%6Eews")) == ["news"])
    }

    @Test("a path outside /sub/ is not found", arguments: ["/", "/sub", "/subscribe/a", "/pub/a", "/SUB/a", "/x/sub/a"])
    func notFound(_ uri: String) {
        expectGatewayError(.notFound) { _ = try Self.request(uri) }
    }

    @Test(
        "rejects empty and invalid channel names",
        arguments: ["/sub/", "/sub/,", "/sub/a,", "/sub/,a", "/sub/a,,b", "/sub/a%20b", "/sub/a/b", "/sub/a%2Fb", "/sub/caf%C3%A9", "/sub/a%00"]
    )
    func rejectsBadNames(_ uri: String) {
        expectGatewayError(.badRequest) { _ = try Self.request(uri) }
    }

    @Test("the channel-name length limit applies")
    func channelNameLength() throws {
        let limits = SubscribeLimits(maxChannelNameLength: 5)
        #expect(Self.names(try Self.request("/sub/abcde", limits: limits)) == ["abcde"])
        expectGatewayError(.badRequest) { _ = try Self.request("/sub/abcdef", limits: limits) }
        expectGatewayError(.badRequest) { _ = try Self.request("/sub/ok,abcdef", limits: limits) }
        expectGatewayError(.badRequest) { _ = try Self.request("/sub/" + String(repeating: "a", count: 129)) }
    }

    @Test("the channel-count limit applies")
    func channelCount() throws {
        let sixteen = (1...16).map { "c\($0)" }.joined(separator: ",")
        #expect(try Self.request("/sub/" + sixteen).channels.count == 16)
        let seventeen = (1...17).map { "c\($0)" }.joined(separator: ",")
        expectGatewayError(.badRequest) { _ = try Self.request("/sub/" + seventeen) }
        let limits = SubscribeLimits(maxChannels: 2)
        #expect(try Self.request("/sub/a,b", limits: limits).channels.count == 2)
        expectGatewayError(.badRequest) { _ = try Self.request("/sub/a,b,c", limits: limits) }
        let thousands = (1...10_000).map { "c\($0)" }.joined(separator: ",")
        expectGatewayError(.badRequest) { _ = try Self.request("/sub/" + thousands) }
    }

    // MARK: transport

    @Test("?transport= selects the transport", arguments: [("sse", TransportKind.sse), ("stream", .stream), ("poll", .poll)])
    func transportQuery(_ name: String, _ expected: TransportKind) throws {
        #expect(try Self.request("/sub/a?transport=\(name)").transport == expected)
        // The query wins over the Accept header.
        #expect(try Self.request("/sub/a?transport=\(name)", accept: "text/event-stream").transport == expected)
    }

    @Test("an unknown transport is rejected", arguments: ["websocket", "SSE", "Poll", "", "sse ", "sse,poll", "longpoll"])
    func unknownTransport(_ name: String) {
        expectGatewayError(.badRequest) { _ = try Self.request("/sub/a?transport=\(name)") }
    }

    @Test(
        "Accept: text/event-stream selects SSE",
        arguments: ["text/event-stream", "TEXT/EVENT-STREAM", "text/html, text/event-stream;q=0.9", "Text/Event-Stream; charset=utf-8"]
    )
    func acceptSelectsSSE(_ accept: String) throws {
        #expect(try Self.request("/sub/a", accept: accept).transport == .sse)
    }

    @Test("without transport or an SSE Accept header the transport is poll", arguments: [nil, "", "*/*", "application/json", "text/plain", "text/event"] as [String?])
    func defaultIsPoll(_ accept: String?) throws {
        #expect(try Self.request("/sub/a", accept: accept).transport == .poll)
    }

    // MARK: cursor

    @Test("the cursor comes from ?last_event_id=")
    func cursorFromQuery() throws {
        #expect(try Self.request("/sub/a?last_event_id=42").cursor == Cursor(positions: [42]))
        #expect(try Self.request("/sub/a,b?last_event_id=1.2").cursor == Cursor(positions: [1, 2]))
    }

    @Test("the cursor comes from the Last-Event-ID header")
    func cursorFromHeader() throws {
        #expect(try Self.request("/sub/a", lastEventID: "7").cursor == Cursor(positions: [7]))
    }

    @Test("Last-Event-ID wins over ?last_event_id=")
    func headerWins() throws {
        #expect(try Self.request("/sub/a?last_event_id=1", lastEventID: "2").cursor == Cursor(positions: [2]))
        // The query is not even looked at when the header is present.
        #expect(try Self.request("/sub/a?last_event_id=garbage", lastEventID: "3").cursor == Cursor(positions: [3]))
    }

    @Test("an empty Last-Event-ID falls back to the query")
    func emptyHeaderFallsBack() throws {
        #expect(try Self.request("/sub/a?last_event_id=5", lastEventID: "").cursor == Cursor(positions: [5]))
        #expect(try Self.request("/sub/a", lastEventID: "").cursor == nil)
    }

    @Test("an empty ?last_event_id= means no cursor")
    func emptyQueryCursor() throws {
        #expect(try Self.request("/sub/a?last_event_id=").cursor == nil)
    }

    @Test("a malformed cursor is rejected", arguments: ["x", "1..2", "-1", "18446744073709551616", "1.", ".1"])
    func malformedCursor(_ cursor: String) {
        expectGatewayError(.badRequest) { _ = try Self.request("/sub/a", lastEventID: cursor) }
        expectGatewayError(.badRequest) { _ = try Self.request("/sub/a?last_event_id=\(cursor)") }
    }

    @Test("a cursor with a different number of positions is accepted (the state machine reports the gap)")
    func cursorForOtherChannels() throws {
        #expect(try Self.request("/sub/a?last_event_id=1.2.3").cursor == Cursor(positions: [1, 2, 3]))
    }

    // MARK: timeout

    @Test("?timeout= sets the poll timeout within 1 s and the limit", arguments: [("1", 1.0), ("30", 30), ("12.5", 12.5), ("1.0", 1), ("29.999", 29.999)])
    func validTimeout(_ text: String, _ expected: Double) throws {
        #expect(try Self.request("/sub/a?timeout=\(text)").pollTimeout == expected)
    }

    @Test(
        "an invalid ?timeout= is rejected",
        arguments: ["0", "0.5", "0.999", "-1", "-0", "-inf", "nan", "NaN", "-nan", "inf", "infinity", "Infinity", "31", "30.0001", "1e9", "1e400", "abc", "", "5s", " 5"]
    )
    func invalidTimeout(_ text: String) {
        expectGatewayError(.badRequest) { _ = try Self.request("/sub/a?timeout=\(text)") }
    }

    @Test("the timeout limit follows SubscribeLimits.pollTimeout")
    func timeoutLimit() throws {
        let limits = SubscribeLimits(pollTimeout: 5)
        #expect(try Self.request("/sub/a", limits: limits).pollTimeout == 5)
        #expect(try Self.request("/sub/a?timeout=5", limits: limits).pollTimeout == 5)
        expectGatewayError(.badRequest) { _ = try Self.request("/sub/a?timeout=6", limits: limits) }
    }

    @Test("an invalid ?timeout= with an unbounded poll limit is a 400, not a crash")
    func invalidTimeoutWithInfiniteLimit() async {
        await #expect(processExitsWith: .success) {
            let target = try RequestTarget(parsing: "/sub/a?timeout=abc")
            do {
                _ = try SubscribeRequest(target: target, accept: nil, lastEventID: nil, limits: SubscribeLimits(pollTimeout: .infinity))
            } catch is GatewayError {
                // Expected.
            }
        }
    }

    @Test("every part at once")
    func everything() throws {
        let request = try Self.request("/sub/b,a?transport=stream&last_event_id=10.20&timeout=3", accept: "text/event-stream")
        #expect(Self.names(request) == ["a", "b"])
        #expect(request.transport == .stream)
        #expect(request.cursor == Cursor(positions: [10, 20]))
        #expect(request.pollTimeout == 3)
    }
}
