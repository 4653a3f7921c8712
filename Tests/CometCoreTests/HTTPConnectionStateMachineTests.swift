import CometCore
import NIOCore
import Testing

@Suite("HTTPConnectionStateMachine")
struct HTTPConnectionStateMachineTests {
    typealias Machine = HTTPConnectionStateMachine

    private func machine() -> Machine {
        Machine(limits: .init(maxURIBytes: 1024, maxHeaderBytes: 4096))
    }

    private func bytes(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    /// A short name for each action, with the request's URI and body where there is one.
    private func describe(_ action: Machine.Action) -> String {
        switch action {
        case .wait: return "wait"
        case .route(let head): return "route \(head.uri)"
        case .request(let head, let body): return "request \(head.uri) [\(String(buffer: body))]"
        case .bodyPart(let part): return "part [\(String(buffer: part))]"
        case .bodyEnd: return "end"
        case .fail(let error): return "fail \(error.code.status)"
        }
    }

    /// Feeds `text` and runs the machine until it waits, routing every head with `policy`.
    private func feed(_ machine: inout Machine, _ text: String, policy: Machine.BodyPolicy = .buffer(limit: 100)) -> [String] {
        guard case .parse = machine.read(self.bytes(text)) else { return ["not parsed"] }
        return self.run(&machine, policy: policy)
    }

    private func run(_ machine: inout Machine, policy: Machine.BodyPolicy = .buffer(limit: 100)) -> [String] {
        var log: [String] = []
        var action = machine.next()
        while true {
            log.append(self.describe(action))
            switch action {
            case .wait, .fail:
                return log
            case .route:
                action = machine.routed(policy)
            case .request, .bodyEnd:
                return log
            case .bodyPart:
                action = machine.next()
            }
        }
    }

    @Test("A request that arrives whole is routed, then handed over with its body")
    func wholeRequest() {
        var machine = self.machine()
        let log = self.feed(&machine, "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        #expect(log == ["route /a", "request /a [hello]"])
        #expect(machine.keepAlive)
    }

    @Test("A body arriving in parts is buffered within the route's limit")
    func bufferedInParts() {
        var machine = self.machine()
        #expect(self.feed(&machine, "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhel") == ["route /a", "wait"])
        #expect(self.feed(&machine, "lo") == ["wait"])
        #expect(self.feed(&machine, "world") == ["request /a [helloworld]"])
    }

    @Test("A body over the route's limit is refused with 413, by its Content-Length or as it arrives")
    func bodyLimit() {
        var declared = self.machine()
        let declaredLog = self.feed(&declared, "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n", policy: .buffer(limit: 10))
        #expect(declaredLog == ["route /a", "fail 413"])
        #expect(declared.isClosed)
        var chunked = self.machine()
        let log = self.feed(&chunked, "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n",
                            policy: .buffer(limit: 10))
        #expect(log == ["route /a", "fail 413"])
    }

    @Test("A streamed body comes out in parts, then its end; the same limit does not apply")
    func streamed() {
        var machine = self.machine()
        let log = self.feed(&machine, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabc", policy: .stream)
        #expect(log == ["route /up", "part [abc]", "wait"])
        #expect(self.run(&machine, policy: .stream) == ["wait"])
        guard case .parse = machine.read(self.bytes("def")) else {
            Issue.record("bytes of a streamed body are parsed")
            return
        }
        #expect(self.run(&machine, policy: .stream) == ["part [def]", "end"])
    }

    @Test("Pipelined requests wait for the response in progress, then are served in order")
    func pipelining() {
        var machine = self.machine()
        let log = self.feed(&machine, "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(log == ["route /1", "request /1 []"])
        #expect(self.run(&machine) == ["wait"], "nothing while /1 is answered")
        let r1 = machine.responseFinished(now: 0, idleTimeout: 100) == .keepAlive(.arm(at: 100))
        #expect(r1)
        #expect(self.run(&machine) == ["route /2", "request /2 []"])
    }

    @Test("A client that pipelines more than 64 KiB behind a response in progress is closed")
    func heldBytesBounded() {
        var machine = self.machine()
        _ = self.feed(&machine, "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n")
        let chunk = String(repeating: "x", count: 40 * 1024)
        guard case .none = machine.read(self.bytes(chunk)) else {
            Issue.record("the first 40 KiB are held")
            return
        }
        guard case .close = machine.read(self.bytes(chunk)) else {
            Issue.record("80 KiB held: close")
            return
        }
    }

    @Test("A held stream ignores what the client sends; an upgraded connection hands it on")
    func streamAndUpgrade() {
        var stream = self.machine()
        _ = self.feed(&stream, "GET /sub/a HTTP/1.1\r\nHost: x\r\n\r\n")
        stream.holdStream()
        guard case .none = stream.read(self.bytes(String(repeating: "y", count: 100_000))) else {
            Issue.record("ignored, whatever its size")
            return
        }
        var upgraded = self.machine()
        _ = self.feed(&upgraded, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nFRAME")
        let pending = upgraded.upgrade()
        #expect(pending.map { String(buffer: $0) } == "FRAME")
        guard case .upgraded(let later) = upgraded.read(self.bytes("MORE")) else {
            Issue.record("bytes after an upgrade belong to the new protocol")
            return
        }
        #expect(String(buffer: later) == "MORE")
    }

    @Test("Connection: close, HTTP/1.0 and a drain end the connection after the response")
    func closing() {
        var close = self.machine()
        _ = self.feed(&close, "GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(!close.keepAlive)
        let r2 = close.responseFinished(now: 0, idleTimeout: 1)
        #expect(r2 == .close)
        var old = self.machine()
        _ = self.feed(&old, "GET /a HTTP/1.0\r\n\r\n")
        let r3 = old.responseFinished(now: 0, idleTimeout: 1)
        #expect(r3 == .close)
        var draining = self.machine()
        _ = self.feed(&draining, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        let r4 = draining.quiesce()
        #expect(!r4, "a request in progress finishes first")
        let r5 = draining.responseFinished(now: 0, idleTimeout: 1)
        #expect(r5 == .close)
        var idle = self.machine()
        let r6 = idle.quiesce()
        #expect(r6, "an idle connection closes at once")
    }

    @Test("A response that comes before a streamed body was read closes the connection")
    func earlyResponse() {
        var machine = self.machine()
        _ = self.feed(&machine, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc", policy: .stream)
        let r7 = machine.responseFinished(now: 0, idleTimeout: 1)
        #expect(r7 == .close)
    }

    @Test("The request timer starts with a partial request and is cleared once it is complete")
    func requestTimer() {
        var machine = self.machine()
        let r8 = machine.connectionOpened(now: 0, idleTimeout: 1000) == .arm(at: 1000)
        #expect(r8)
        _ = self.feed(&machine, "GET /a HTTP/1.1\r\nHost: x")
        let r9 = machine.readComplete(now: 10, requestTimeout: 50) == .arm(at: 60)
        #expect(r9)
        let r10 = machine.readComplete(now: 20, requestTimeout: 50)
        #expect(r10 == .none, "it runs from the first partial read")
        let r11 = machine.timerFired(now: 60)
        #expect(r11 == .requestTimedOut)
        #expect(machine.isClosed)

        var complete = self.machine()
        _ = complete.connectionOpened(now: 0, idleTimeout: 1000)
        _ = self.feed(&complete, "GET /a HTTP/1.1\r\nHost: x")
        _ = complete.readComplete(now: 10, requestTimeout: 50)
        #expect(self.feed(&complete, "\r\n\r\n") == ["route /a", "request /a []"])
        let r12 = complete.timerFired(now: 60)
        #expect(r12 == .none, "a request answered in time does not time out")
    }

    @Test("An idle connection closes at its deadline; one that got a new request does not")
    func idleTimer() {
        var machine = self.machine()
        _ = machine.connectionOpened(now: 0, idleTimeout: 100)
        let r13 = machine.timerFired(now: 100)
        #expect(r13 == .closeIdle)
        var busy = self.machine()
        _ = busy.connectionOpened(now: 0, idleTimeout: 100)
        _ = self.feed(&busy, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        let r14 = busy.timerFired(now: 100)
        #expect(r14 == .none)
    }

    @Test("A held poll expires at its deadline")
    func pollTimer() {
        var machine = self.machine()
        _ = self.feed(&machine, "GET /sub/a?transport=poll HTTP/1.1\r\nHost: x\r\n\r\n")
        let r15 = machine.holdPoll(until: 500) == .arm(at: 500)
        #expect(r15)
        let r16 = machine.timerFired(now: 500)
        #expect(r16 == .pollExpired)
    }

    @Test("A malformed request is answered with its error and nothing after it is read")
    func malformed() {
        var machine = self.machine()
        #expect(self.feed(&machine, "GARBAGE\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n") == ["fail 400"])
        #expect(machine.isClosed)
        guard case .none = machine.read(self.bytes("GET /b HTTP/1.1\r\nHost: x\r\n\r\n")) else {
            Issue.record("a closed connection reads nothing")
            return
        }
    }

    @Test("A refused head ends the connection: its body is not read")
    func refusedHead() {
        var machine = self.machine()
        guard case .parse = machine.read(self.bytes("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\nHost: x\r\n\r\n")),
              case .route = machine.next()
        else {
            Issue.record("a head to route")
            return
        }
        machine.refused()
        #expect(machine.isClosed)
        let after = machine.next()
        #expect(self.describe(after) == "wait")
    }
}
