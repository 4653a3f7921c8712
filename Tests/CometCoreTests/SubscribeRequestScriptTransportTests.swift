import CometCore
import Testing

// Unit tests for how `SubscribeRequest` picks the script transports (JSONP, forever iframe) and reads `?callback=`
// and `?origin=`.

@Suite("SubscribeRequest script transports")
struct SubscribeRequestScriptTransportTests {
    static func request(_ uri: String, accept: String? = nil) throws -> SubscribeRequest {
        try SubscribeRequest(target: RequestTarget(parsing: uri), accept: accept, lastEventID: nil, limits: SubscribeLimits())
    }

    // MARK: JSONP

    @Test("?callback= alone selects JSONP")
    func callbackAloneIsJSONP() throws {
        let request = try Self.request("/sub/a?callback=cb")
        #expect(request.transport == .jsonp)
        #expect(request.callback?.name == "cb")
        #expect(request.origin == nil)
        #expect(request.transport.connectionKind == .poll)
        // Even with an SSE Accept header: the callback says the page loads a script.
        #expect(try Self.request("/sub/a?callback=App.comet.receive", accept: "text/event-stream").transport == .jsonp)
    }

    @Test("?transport=jsonp with a callback")
    func explicitJSONP() throws {
        let request = try Self.request("/sub/a,b?transport=jsonp&callback=jQuery123_456&last_event_id=1.2")
        #expect(request.transport == .jsonp)
        #expect(request.callback?.name == "jQuery123_456")
        #expect(request.cursor == Cursor(positions: [1, 2]))
    }

    @Test("?transport=jsonp without a callback is a 400")
    func jsonpWithoutCallback() {
        expectGatewayError(.badRequest) { _ = try Self.request("/sub/a?transport=jsonp") }
    }

    @Test("JSONP with ?origin= is a 400 (origin is for the iframe)")
    func jsonpWithOrigin() {
        expectGatewayError(.badRequest) { _ = try Self.request("/sub/a?transport=jsonp&callback=cb&origin=https%3A%2F%2Fx.example") }
        expectGatewayError(.badRequest) { _ = try Self.request("/sub/a?callback=cb&origin=https%3A%2F%2Fx.example") }
    }

    @Test(
        "an invalid callback is a 400 and its reason does not repeat it",
        arguments: [
            "/sub/a?callback=alert(1)//",
            "/sub/a?callback=",
            "/sub/a?callback=1a",
            "/sub/a?callback=a-b",
            "/sub/a?callback=a%20b",
            "/sub/a?callback=a+b",
            "/sub/a?callback=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
            "/sub/a?transport=jsonp&callback=a..b",
            "/sub/a?transport=iframe&callback=a%5B0%5D",
            "/sub/a?transport=iframe&callback=caf%C3%A9",
        ]
    )
    func invalidCallback(_ uri: String) {
        let error = expectGatewayError(.badRequest) { _ = try Self.request(uri) }
        #expect(error?.reason.contains("alert") == false)
        #expect(error?.reason.contains("<script>") == false)
    }

    // MARK: Iframe

    @Test("?transport=iframe with a callback: the same-origin frame")
    func iframeWithCallback() throws {
        let request = try Self.request("/sub/a?transport=iframe&callback=parentHandler")
        #expect(request.transport == .iframe)
        #expect(request.callback?.name == "parentHandler")
        #expect(request.origin == nil)
        #expect(request.transport.connectionKind == .stream)
    }

    @Test("?transport=iframe with an origin: the cross-origin frame")
    func iframeWithOrigin() throws {
        let request = try Self.request("/sub/a?transport=iframe&origin=https%3A%2F%2Fapp.example.com%3A8443")
        #expect(request.transport == .iframe)
        #expect(request.origin == "https://app.example.com:8443")
        #expect(request.callback == nil)
    }

    @Test("?transport=iframe with both a callback and an origin is a 400")
    func iframeWithBoth() {
        expectGatewayError(.badRequest) { _ = try Self.request("/sub/a?transport=iframe&callback=cb&origin=https%3A%2F%2Fx.example") }
        expectGatewayError(.badRequest) { _ = try Self.request("/sub/a?origin=https%3A%2F%2Fx.example&callback=cb&transport=iframe") }
    }

    @Test("?transport=iframe with neither: the default callback applies later")
    func iframeWithNeither() throws {
        let request = try Self.request("/sub/a?transport=iframe")
        #expect(request.transport == .iframe)
        #expect(request.callback == nil)
        #expect(request.origin == nil)
    }

    @Test("an empty or over-long iframe origin is a 400")
    func invalidOrigin() throws {
        expectGatewayError(.badRequest) { _ = try Self.request("/sub/a?transport=iframe&origin=") }
        let longest = "https://" + String(repeating: "a", count: 248)
        #expect(longest.utf8.count == 256)
        #expect(try Self.request("/sub/a?transport=iframe&origin=" + longest).origin == longest)
        expectGatewayError(.badRequest) { _ = try Self.request("/sub/a?transport=iframe&origin=" + longest + "a") }
    }

    // MARK: Other transports ignore the script parameters

    @Test(
        "?callback= and ?origin= are ignored by sse, stream and poll",
        arguments: [
            ("/sub/a?transport=sse&callback=x", TransportKind.sse),
            ("/sub/a?callback=x&transport=sse", .sse),
            ("/sub/a?transport=stream&callback=x&origin=https%3A%2F%2Fx.example", .stream),
            ("/sub/a?transport=poll&origin=https%3A%2F%2Fx.example", .poll),
            ("/sub/a?transport=sse&callback=alert(1)", .sse),
        ]
    )
    func ignoredByOtherTransports(_ uri: String, _ expected: TransportKind) throws {
        let request = try Self.request(uri)
        #expect(request.transport == expected)
        #expect(request.callback == nil)
        #expect(request.origin == nil)
    }

    @Test("without ?callback= the choice is unchanged: SSE from Accept, else poll")
    func noCallback() throws {
        #expect(try Self.request("/sub/a", accept: "text/event-stream").transport == .sse)
        #expect(try Self.request("/sub/a").transport == .poll)
        #expect(try Self.request("/sub/a").callback == nil)
    }

    @Test("an unknown transport's reason names the five transports", arguments: ["websocket", "JSONP", "Iframe", "forever", "<script>"])
    func unknownTransport(_ name: String) {
        let error = expectGatewayError(.badRequest) { _ = try Self.request("/sub/a?transport=" + name) }
        for transport in ["sse", "stream", "poll", "iframe", "jsonp"] {
            #expect(error?.reason.contains(transport) == true, "the reason mentions \(transport)")
        }
        #expect(error?.reason.contains("<script>") == false)
    }

    @Test("every transport name is accepted", arguments: TransportKind.allCases)
    func allTransportNames(_ transport: TransportKind) throws {
        // The script transports need what they need: a callback for JSONP.
        let uri = "/sub/a?transport=\(transport.rawValue)" + (transport == .jsonp ? "&callback=cb" : "")
        #expect(try Self.request(uri).transport == transport)
        #expect(TransportKind.allCases.count == 5)
    }
}
