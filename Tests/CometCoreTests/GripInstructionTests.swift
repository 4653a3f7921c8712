import CometCore
import NIOCore
import Testing

@Suite("GRIP instructions from the application")
struct GripInstructionTests {
    private func parse(status: Int = 200, _ headers: [(String, String)], body: String = "") throws(GripInstruction.Refusal)
        -> GripInstruction {
        try GripInstruction.parse(status: status, reason: "OK", headers: headers.map { (name: $0.0, value: $0.1) },
                                  body: Array(body.utf8), maxChannels: 4, maxChannelNameLength: 64)
    }

    private func refusal(status: Int = 200, _ headers: [(String, String)], body: String = "") -> String? {
        do {
            _ = try self.parse(status: status, headers, body: body)
            return nil
        } catch {
            return error.message
        }
    }

    @Test("Only Grip-Hold or an instruct body make an instruction")
    func detection() {
        #expect(GripInstruction.isInstruction([("Grip-Hold", "stream")]))
        #expect(GripInstruction.isInstruction([("content-type", "application/grip-instruct; charset=utf-8")]))
        #expect(!GripInstruction.isInstruction([("Grip-Channel", "a"), ("Content-Type", "text/plain")]))
    }

    @Test("Headers: mode, channels with prev-id (list and repeated), timeout, keep-alive, status, next link")
    func headers() throws {
        let instruction = try self.parse([
            ("Grip-Hold", "response"), ("Grip-Channel", "b; prev-id=\"7\", a"), ("grip-channel", "c;prev-id=x"),
            ("Grip-Timeout", "20"), ("Grip-Keep-Alive", "\\n; format=cstring; timeout=30; mode=interval"),
            ("Grip-Status", "404 Nothing Yet"), ("Grip-Link", "</next?x=1>; rel=next; timeout=60"),
            ("Content-Type", "text/plain"), ("X-App", "1"),
        ], body: "timeout body")
        #expect(instruction.mode == .response)
        #expect(instruction.channels.map(\.name.rawValue) == ["a", "b", "c"])
        #expect(instruction.channels.map(\.prevID) == [nil, "7", "x"])
        #expect(instruction.timeout == 20)
        #expect(instruction.keepAlive == .init(content: [0x0A], timeout: 30, interval: true))
        #expect(instruction.response.status == 404 && instruction.response.reason == "Nothing Yet")
        #expect(instruction.response.headers.map(\.name) == ["Content-Type", "X-App"])
        #expect(instruction.response.body == Array("timeout body".utf8))
        #expect(instruction.nextLink == .init(uri: "/next?x=1", timeout: 60))
    }

    @Test("Defaults: 55 s timeout, 55 s idle keep-alive (raw), the response's own status")
    func defaults() throws {
        let instruction = try self.parse([("Grip-Hold", "stream"), ("Grip-Channel", "a"), ("Grip-Keep-Alive", ":")])
        #expect(instruction.mode == .stream)
        #expect(instruction.timeout == 55)
        #expect(instruction.keepAlive == .init(content: Array(":".utf8), timeout: 55, interval: false))
        #expect(instruction.response.status == 200 && instruction.response.reason == "OK")
        #expect(instruction.nextLink == nil)
        let base64 = try self.parse([("Grip-Hold", "stream"), ("Grip-Channel", "a"),
                                     ("Grip-Keep-Alive", "aGk=; format=base64; timeout=0")])
        #expect(base64.keepAlive == .init(content: Array("hi".utf8), timeout: 1, interval: false))
    }

    @Test("An instruct document: hold, channels, timeout, keep-alive and the response (headers as object or pairs)")
    func instructBody() throws {
        let instruction = try self.parse([("Content-Type", "application/grip-instruct")], body: """
            {"hold": {"mode": "stream", "channels": [{"name": "b", "prev-id": "3"}, {"name": "a"}], "timeout": 9,
                      "keep-alive": {"content-bin": "Cg==", "timeout": 25}},
             "response": {"code": 201, "headers": [["Content-Type", "text/event-stream"]], "body": "start\\n"}}
            """)
        #expect(instruction.mode == .stream)
        #expect(instruction.channels.map(\.name.rawValue) == ["a", "b"])
        #expect(instruction.channels.map(\.prevID) == [nil, "3"])
        #expect(instruction.timeout == 9)
        #expect(instruction.keepAlive == .init(content: [0x0A], timeout: 25, interval: false))
        #expect(instruction.response.status == 201 && instruction.response.reason == "Created")
        #expect(instruction.response.headers.map(\.value) == ["text/event-stream"])
        #expect(instruction.response.body == Array("start\n".utf8))
        let noHold = try self.parse([("Content-Type", "application/grip-instruct")],
                                    body: #"{"response": {"headers": {"X-A": "1"}, "body": "now"}}"#)
        #expect(noHold.mode == nil && noHold.channels.isEmpty)
        #expect(noHold.response.body == Array("now".utf8))
        let defaultMode = try self.parse([("Content-Type", "application/grip-instruct")],
                                         body: #"{"hold": {"channels": [{"name": "a"}]}}"#)
        #expect(defaultMode.mode == .response)
        #expect(defaultMode.response.body.isEmpty)
    }

    @Test("A misbehaving application gets a short reason (the client a 502)")
    func refusals() {
        let instruct = ("Content-Type", "application/grip-instruct")
        #expect(self.refusal([("Grip-Hold", "forever"), ("Grip-Channel", "a")]) == "Grip-Hold must be 'response' or 'stream'")
        #expect(self.refusal([("Grip-Hold", "stream")]) == "GRIP hold names no channel")
        #expect(self.refusal([("Grip-Hold", "stream"), ("Grip-Channel", "a b")])
            == "GRIP channel name is not valid for this gateway")
        #expect(self.refusal([("Grip-Hold", "stream"), ("Grip-Channel", "a, b, c, d, e")])
            == "GRIP hold names more than 4 channels")
        #expect(self.refusal([("Grip-Hold", "response"), ("Grip-Channel", "a"), ("Grip-Timeout", "-1")])
            == "Grip-Timeout is not a number of seconds")
        #expect(self.refusal([("Grip-Hold", "stream"), ("Grip-Channel", "a"), ("Grip-Keep-Alive", "x; format=rot13")])
            == "Grip-Keep-Alive has an unknown format")
        #expect(self.refusal([("Grip-Hold", "stream"), ("Grip-Channel", "a"), ("Grip-Keep-Alive", "\\q; format=cstring")])
            == "Grip-Keep-Alive cstring format is malformed")
        #expect(self.refusal([("Grip-Hold", "stream"), ("Grip-Channel", "a"), ("Grip-Status", "2000")])
            == "Grip-Status has an invalid status code")
        #expect(self.refusal([("Grip-Hold", "stream"), ("Grip-Channel", "a"), ("Grip-Link", "/x; rel=next")])
            == "Grip-Link is not <URI>")
        #expect(self.refusal(status: 500, [instruct], body: "{}") == "application/grip-instruct needs status 200")
        #expect(self.refusal([instruct], body: "{") == "application/grip-instruct body is not valid JSON")
        #expect(self.refusal([instruct], body: "[]") == "instruct must be an object")
        #expect(self.refusal([instruct], body: #"{"hold": {"channels": "a"}}"#) == "hold 'channels' missing or not a list")
        #expect(self.refusal([instruct], body: #"{"hold": {"channels": [{"name": "a"}], "timeout": 1.5}}"#)
            == "hold 'timeout' is not a valid integer")
        #expect(self.refusal([instruct], body: #"{"response": {"headers": {"X": "a\r\nB: c"}}}"#)
            == "header value holds CR, LF or NUL")
        #expect(self.refusal([instruct], body: #"{"response": {"reason": "OK\r\nX: y"}}"#)
            == "response 'reason' holds control characters")
    }

    @Test("Header elements: quoted strings keep their commas and semicolons")
    func headerElements() {
        let elements = HeaderElement.parseList(["a; prev-id=\"x,y;z\", b ;k", ""])
        #expect(elements.map(\.value) == ["a", "b"])
        #expect(elements[0].parameter("prev-id") == "x,y;z")
        #expect(elements[1].parameter("k") == "")
    }

    @Test("A next link's target: a path as it is, an absolute URL's path and query, a relative link against the request")
    func nextLinkTarget() throws {
        let link = { (uri: String) in GripInstruction.NextLink(uri: uri, timeout: 1) }
        #expect(link("/next?x=1").target(relativeTo: "/a/b?q") == "/next?x=1")
        #expect(link("http://app.example:8080/n/m?p=2").target(relativeTo: "/") == "/n/m?p=2")
        #expect(link("HTTPS://app.example").target(relativeTo: "/") == "/")
        #expect(link("https://app.example?p=1").target(relativeTo: "/") == "/?p=1")
        #expect(link("more?page=2").target(relativeTo: "/feed/live?x=1") == "/feed/more?page=2")
        #expect(link("more").target(relativeTo: "/") == "/more")
        #expect(self.refusal([("Grip-Hold", "stream"), ("Grip-Channel", "a"), ("Grip-Link", "</a b>; rel=next")])
            == "Grip-Link contains an invalid link")
    }
}
