import NIOCore
import XCTest

@testable import CometCore

// Unit tests for `HTTPRequestParser` (and the `RequestHead` it produces).
//
// Every expectation is written by hand from RFC 9112 / RFC 9110 and the parser's contract; nothing here asks the
// parser to compute an expected value, except where a test compares two ways of feeding the same bytes (one piece,
// byte by byte, every split point), which must agree.

// MARK: - Test support

/// A parser event reduced to plain values, so that event sequences can be compared and printed.
private enum ParsedEvent: Equatable, CustomStringConvertible {
    case head(HeadSummary)
    case body([UInt8])
    case end

    init(_ event: HTTPRequestParser.Event) {
        switch event {
        case .head(let head): self = .head(HeadSummary(head))
        case .body(let buffer): self = .body(Array(buffer.readableBytesView))
        case .end: self = .end
        }
    }

    var description: String {
        switch self {
        case .head(let head): "head(\(head))"
        case .body(let bytes): "body(\"\(escaped(bytes))\")"
        case .end: "end"
        }
    }
}

private struct HeaderField: Equatable, CustomStringConvertible {
    var name: [UInt8]
    var value: [UInt8]

    var description: String { "\(escaped(self.name)): \(escaped(self.value))" }
}

/// Everything a `RequestHead` exposes, as comparable values.
private struct HeadSummary: Equatable, CustomStringConvertible {
    var method: RequestMethod
    var uri: String
    var minorVersion: Int
    var keepAlive: Bool
    var contentLength: Int?
    var isChunked: Bool
    var isUpgrade: Bool
    var hasBody: Bool
    var expectation: String?
    var fields: [HeaderField]
    var rawHeaders: [UInt8]

    init(_ head: RequestHead) {
        self.method = head.method
        self.uri = head.uri
        self.minorVersion = head.minorVersion
        self.keepAlive = head.keepAlive
        self.contentLength = head.contentLength
        self.isChunked = head.isChunked
        self.isUpgrade = head.isUpgrade
        self.hasBody = head.hasBody
        self.expectation = head.expectation
        var fields: [HeaderField] = []
        head.forEachHeader { name, value in
            fields.append(HeaderField(name: Array(name), value: Array(value)))
            return true
        }
        self.fields = fields
        self.rawHeaders = Array(head.rawHeaders.readableBytesView)
    }

    var description: String {
        "\(self.method) \(self.uri) 1.\(self.minorVersion) keepAlive=\(self.keepAlive) "
            + "length=\(self.contentLength.map(String.init) ?? "nil") chunked=\(self.isChunked) fields=\(self.fields)"
    }
}

/// Merges adjacent body parts: how a body is cut into parts depends on how its bytes arrived.
private func merged(_ events: [ParsedEvent]) -> [ParsedEvent] {
    var result: [ParsedEvent] = []
    for event in events {
        if case .body(let more) = event, case .body(let previous)? = result.last {
            result[result.count - 1] = .body(previous + more)
        } else {
            result.append(event)
        }
    }
    return result
}

/// What parsing a byte stream produced.
private struct Outcome: CustomStringConvertible {
    /// The events, adjacent body parts merged.
    var events: [ParsedEvent]
    var error: GatewayError?
    var isBetweenRequests: Bool
    /// Bytes left unconsumed in the buffer.
    var leftover: Int
    /// The parser returned more events than the bytes can account for (an endless loop).
    var runaway: Bool

    /// The same result: the same events, the same error status, the same state (and, without an error, the same
    /// unconsumed bytes; after an error the bytes not yet fed differ with the way they were fed).
    func matches(_ other: Outcome) -> Bool {
        self.events == other.events && self.error?.code.status == other.error?.code.status
            && self.isBetweenRequests == other.isBetweenRequests && self.runaway == other.runaway
            && (self.error != nil || self.leftover == other.leftover)
    }

    var description: String {
        "events: \(self.events), error: \(self.error.map(String.init(describing:)) ?? "none"), "
            + "betweenRequests: \(self.isBetweenRequests), leftover: \(self.leftover)\(self.runaway ? ", RUNAWAY" : "")"
    }
}

/// Feeds bytes to a parser the way a channel handler does: append to one buffer, take events until `nil`.
private struct Feeder {
    var parser: HTTPRequestParser
    var buffer = ByteBuffer()
    /// Every event as returned (body parts not merged).
    var events: [ParsedEvent] = []
    var heads: [RequestHead] = []
    var error: GatewayError?
    var runaway = false

    /// After each head, take the whole body at once when the parser offers it (``HTTPRequestParser/wholeBody(_:)``),
    /// recorded as the `.body` and `.end` events it stands for.
    var wholeBodies = false
    /// How many requests were taken with ``HTTPRequestParser/wholeBody(_:)``.
    var wholeBodiesTaken = 0

    init(limits: HTTPRequestParser.Limits = .init(), wholeBodies: Bool = false) {
        self.parser = HTTPRequestParser(limits: limits)
        self.wholeBodies = wholeBodies
    }

    /// Appends `bytes` and takes every event they complete; stops for good at the first error.
    mutating func feed(_ bytes: some Sequence<UInt8>) {
        guard self.error == nil, !self.runaway else { return }
        self.buffer.writeBytes(bytes)
        // Every event but `.end` consumes at least one byte and `.end` follows another event: more events than
        // twice the bytes (plus a pending `.end`) means the parser loops.
        var budget = 2 * self.buffer.readableBytes + 4
        while true {
            let event: HTTPRequestParser.Event?
            do {
                event = try self.parser.next(&self.buffer)
            } catch {
                self.error = error
                return
            }
            guard let event else { return }
            if case .head(let head) = event { self.heads.append(head) }
            self.events.append(ParsedEvent(event))
            if self.wholeBodies, case .head = event, let body = self.parser.wholeBody(&self.buffer) {
                if body.readableBytes > 0 { self.events.append(.body(Array(body.readableBytesView))) }
                self.events.append(.end)
                self.wholeBodiesTaken += 1
            }
            budget -= 1
            if budget < 0 {
                self.runaway = true
                return
            }
        }
    }

    var outcome: Outcome {
        Outcome(
            events: merged(self.events),
            error: self.error,
            isBetweenRequests: self.parser.isBetweenRequests,
            leftover: self.buffer.readableBytes,
            runaway: self.runaway
        )
    }
}

private func parseOneShot(_ input: [UInt8], limits: HTTPRequestParser.Limits = .init()) -> Outcome {
    var feeder = Feeder(limits: limits)
    feeder.feed(input)
    return feeder.outcome
}

private func parseByteByByte(_ input: [UInt8], limits: HTTPRequestParser.Limits = .init()) -> Outcome {
    var feeder = Feeder(limits: limits)
    feeder.feed([])
    for byte in input { feeder.feed(CollectionOfOne(byte)) }
    return feeder.outcome
}

private func parse(_ input: [UInt8], splitAt split: Int, limits: HTTPRequestParser.Limits = .init()) -> Outcome {
    var feeder = Feeder(limits: limits)
    feeder.feed(input[..<split])
    feeder.feed(input[split...])
    return feeder.outcome
}

/// The UTF-8 bytes of `text`.
private func utf8(_ text: String) -> [UInt8] { Array(text.utf8) }

/// `bytes` printable: CR, LF, TAB and backslash escaped, other non-ASCII and control bytes as `\xNN`; long inputs cut.
private func escaped(_ bytes: some Collection<UInt8>, limit: Int = 240) -> String {
    var result = ""
    for (index, byte) in bytes.enumerated() {
        if index == limit {
            result += "…(\(bytes.count) bytes)"
            break
        }
        switch byte {
        case UInt8(ascii: "\r"): result += "\\r"
        case UInt8(ascii: "\n"): result += "\\n"
        case UInt8(ascii: "\t"): result += "\\t"
        case UInt8(ascii: "\\"): result += "\\\\"
        case 0x20..<0x7F: result.append(Character(Unicode.Scalar(byte)))
        default: result += "\\x" + (byte < 0x10 ? "0" : "") + String(byte, radix: 16, uppercase: true)
        }
    }
    return result
}

/// A deterministic pseudo-random generator (Knuth's MMIX LCG), so the fuzz tests are reproducible.
private struct LCG {
    var state: UInt64

    mutating func next() -> UInt64 {
        self.state = self.state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return self.state >> 33
    }

    /// A number in `0..<upper` (`upper` > 0).
    mutating func int(_ upper: Int) -> Int { Int(self.next() % UInt64(upper)) }

    mutating func byte() -> UInt8 { UInt8(truncatingIfNeeded: self.next()) }
}

/// The statuses the parser may answer with.
private let parserStatuses: Set<Int> = [400, 413, 414, 431, 501, 505]

/// Checks what any successful parse must look like: `(head body* end)*` then at most one unfinished request; bodies
/// only where the head announced one and exactly as long as its Content-Length; heads the parser could accept.
private func invariantViolations(_ events: [ParsedEvent]) -> [String] {
    var violations: [String] = []
    var current: HeadSummary?
    var bodyBytes = 0
    for (index, event) in events.enumerated() {
        switch event {
        case .head(let head):
            if current != nil { violations.append("head #\(index) before the previous request's end") }
            if !(0...1).contains(head.minorVersion) { violations.append("minor version \(head.minorVersion)") }
            if head.uri.isEmpty || head.uri.utf8.contains(where: { $0 <= 0x20 || $0 >= 0x7F }) {
                violations.append("request target \(head.uri.debugDescription)")
            }
            if head.isChunked && head.contentLength != nil { violations.append("chunked with a Content-Length") }
            let hosts = head.fields.filter { String(decoding: $0.name, as: UTF8.self).lowercased() == "host" }.count
            if hosts > 1 || (head.minorVersion == 1 && hosts != 1) { violations.append("\(hosts) Host fields") }
            current = head
            bodyBytes = 0
        case .body(let bytes):
            guard let head = current else {
                violations.append("body #\(index) outside a request")
                continue
            }
            if bytes.isEmpty { violations.append("empty body part #\(index)") }
            if !head.hasBody { violations.append("body #\(index) for a request without one") }
            bodyBytes += bytes.count
            if let length = head.contentLength, bodyBytes > length {
                violations.append("\(bodyBytes) body bytes for Content-Length \(length)")
            }
        case .end:
            guard let head = current else {
                violations.append("end #\(index) outside a request")
                continue
            }
            if let length = head.contentLength, bodyBytes != length {
                violations.append("\(bodyBytes) body bytes for Content-Length \(length) at the end")
            }
            current = nil
        }
    }
    return violations
}

// MARK: - Sample requests

private let sampleHead = "GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n"
private let chunkedHead = "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"

/// Three requests back to back: no body, a Content-Length body, a chunked body with extensions and a trailer.
private let pipelinedSample =
    "GET /first HTTP/1.1\r\nHost: a\r\n\r\n"
    + "POST /second?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world"
    + "PUT /third HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    + "5;name=val\r\nchunk\r\nA\r\n0123456789\r\nb\r\n-abcdefghij\r\n0\r\nTrailer: x\r\n\r\n"

/// Valid requests the fuzz test mutates.
private let fuzzCorpus: [String] = [
    sampleHead,
    pipelinedSample,
    "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "GET /x HTTP/1.1\nHost: y\nX-A:  b \n\n",
    "\r\n\r\nOPTIONS * HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    chunkedHead + "3;a=b\r\nabc\r\nF\r\n0123456789abcde\r\n0\r\nT: 1\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\nExpect: 100-continue\r\n\r\nabc",
]

// MARK: - Tests

final class HTTPRequestParserTests: XCTestCase {
    // MARK: Assertion helpers

    /// Asserts that `input` parses without error, fed in one piece and byte by byte with the same result, that every
    /// byte is consumed and the parser ends between requests. Returns the events (body parts merged).
    @discardableResult
    private func assertParses(
        _ input: [UInt8],
        limits: HTTPRequestParser.Limits = .init(),
        byteByByte: Bool = true,
        file: StaticString = #filePath,
        line: UInt = #line
    ) -> [ParsedEvent] {
        let oneShot = parseOneShot(input, limits: limits)
        XCTAssertNil(oneShot.error, "input: \(escaped(input))", file: file, line: line)
        XCTAssertFalse(oneShot.runaway, "input: \(escaped(input))", file: file, line: line)
        XCTAssertTrue(oneShot.isBetweenRequests, "not between requests after \(escaped(input))", file: file, line: line)
        XCTAssertEqual(oneShot.leftover, 0, "bytes left over after \(escaped(input))", file: file, line: line)
        XCTAssertEqual(invariantViolations(oneShot.events), [], "input: \(escaped(input))", file: file, line: line)
        if byteByByte {
            let split = parseByteByByte(input, limits: limits)
            XCTAssertTrue(
                split.matches(oneShot),
                "byte by byte: \(split)\none piece: \(oneShot)\ninput: \(escaped(input))",
                file: file,
                line: line
            )
        }
        return oneShot.events
    }

    @discardableResult
    private func assertParses(
        _ input: String,
        limits: HTTPRequestParser.Limits = .init(),
        byteByByte: Bool = true,
        file: StaticString = #filePath,
        line: UInt = #line
    ) -> [ParsedEvent] {
        self.assertParses(utf8(input), limits: limits, byteByByte: byteByByte, file: file, line: line)
    }

    /// Asserts that `input` fails with `status`, fed in one piece and (unless told otherwise) byte by byte.
    @discardableResult
    private func assertStatus(
        _ status: Int,
        _ input: [UInt8],
        limits: HTTPRequestParser.Limits = .init(),
        byteByByte: Bool = true,
        file: StaticString = #filePath,
        line: UInt = #line
    ) -> GatewayError? {
        let oneShot = parseOneShot(input, limits: limits)
        XCTAssertEqual(
            oneShot.error?.code.status,
            status,
            "one piece: input \(escaped(input)) gave \(oneShot)",
            file: file,
            line: line
        )
        if let error = oneShot.error {
            XCTAssertFalse(error.reason.isEmpty, "an error needs a reason", file: file, line: line)
        }
        if byteByByte {
            let split = parseByteByByte(input, limits: limits)
            XCTAssertEqual(
                split.error?.code.status,
                status,
                "byte by byte: input \(escaped(input)) gave \(split)",
                file: file,
                line: line
            )
        }
        return oneShot.error
    }

    @discardableResult
    private func assertStatus(
        _ status: Int,
        _ input: String,
        limits: HTTPRequestParser.Limits = .init(),
        byteByByte: Bool = true,
        file: StaticString = #filePath,
        line: UInt = #line
    ) -> GatewayError? {
        self.assertStatus(status, utf8(input), limits: limits, byteByByte: byteByByte, file: file, line: line)
    }

    /// The first head of `input`, parsed in one piece; fails if there is an error or no head.
    private func head(
        _ input: [UInt8],
        limits: HTTPRequestParser.Limits = .init(),
        file: StaticString = #filePath,
        line: UInt = #line
    ) throws -> RequestHead {
        var feeder = Feeder(limits: limits)
        feeder.feed(input)
        XCTAssertNil(feeder.error, "input: \(escaped(input))", file: file, line: line)
        return try XCTUnwrap(feeder.heads.first, "no head for \(escaped(input))", file: file, line: line)
    }

    private func head(
        _ input: String,
        limits: HTTPRequestParser.Limits = .init(),
        file: StaticString = #filePath,
        line: UInt = #line
    ) throws -> RequestHead {
        try self.head(utf8(input), limits: limits, file: file, line: line)
    }

    /// The body bytes of `events` (merged), in order.
    private func body(_ events: [ParsedEvent]) -> [UInt8] {
        events.flatMap { event -> [UInt8] in
            if case .body(let bytes) = event { return bytes }
            return []
        }
    }

    /// `events` reduced to their kinds: "head", "body", "end".
    private func kinds(_ events: [ParsedEvent]) -> [String] {
        events.map { event in
            switch event {
            case .head: "head"
            case .body: "body"
            case .end: "end"
            }
        }
    }

    // MARK: Valid requests

    func testSimpleGet() throws {
        var parser = HTTPRequestParser()
        var buffer = ByteBuffer(string: sampleHead)
        XCTAssertTrue(parser.isBetweenRequests)

        let first = try parser.next(&buffer)
        guard case .head(let head)? = first else { return XCTFail("expected a head, got \(String(describing: first))") }
        XCTAssertEqual(head.method, .get)
        XCTAssertEqual(head.uri, "/index.html")
        XCTAssertEqual(head.minorVersion, 1)
        XCTAssertTrue(head.keepAlive)
        XCTAssertNil(head.contentLength)
        XCTAssertFalse(head.isChunked)
        XCTAssertFalse(head.isUpgrade)
        XCTAssertFalse(head.hasBody)
        XCTAssertNil(head.expectation)
        XCTAssertEqual(head.first(name: "Host"), "example.com")
        XCTAssertFalse(parser.isBetweenRequests, "the request's end is still to come")

        let second = try parser.next(&buffer)
        guard case .end? = second else { return XCTFail("expected the end, got \(String(describing: second))") }
        XCTAssertTrue(parser.isBetweenRequests)
        XCTAssertEqual(buffer.readableBytes, 0)

        let third = try parser.next(&buffer)
        XCTAssertNil(third, "nothing more to parse")
        XCTAssertTrue(parser.isBetweenRequests)
    }

    func testHeaderAccessors() throws {
        let head = try self.head(
            "GET / HTTP/1.1\r\nHost: example.com\r\nX-Custom:  one \r\nx-custom: two\r\nAccept: */*\r\n\r\n"
        )
        XCTAssertEqual(head.headers.map { $0.name }, ["Host", "X-Custom", "x-custom", "Accept"])
        XCTAssertEqual(head.headers.map { $0.value }, ["example.com", "one", "two", "*/*"])
        XCTAssertEqual(
            Array(head.rawHeaders.readableBytesView),
            utf8("Host: example.com\r\nX-Custom:  one \r\nx-custom: two\r\nAccept: */*\r\n"),
            "rawHeaders: the field lines with their line endings, without the final blank line"
        )
        XCTAssertEqual(head.first(name: "x-custom"), "one", "the first of several fields")
        XCTAssertEqual(head.first(name: "X-CUSTOM"), "one")
        XCTAssertEqual(head.first(name: "hOsT"), "example.com")
        XCTAssertEqual(head.first(name: "accept"), "*/*")
        XCTAssertNil(head.first(name: "Missing"))
        XCTAssertNil(head.first(name: "Host:"))

        var visited: [String] = []
        head.forEachHeader { name, _ in
            visited.append(String(decoding: name, as: UTF8.self))
            return visited.count < 2
        }
        XCTAssertEqual(visited, ["Host", "X-Custom"], "forEachHeader stops when its body returns false")
    }

    func testMethods() throws {
        let expected: [(String, RequestMethod)] = [
            ("GET", .get), ("HEAD", .head), ("POST", .post), ("PUT", .put), ("DELETE", .delete),
            ("OPTIONS", .options), ("PATCH", .other("PATCH")), ("BREW", .other("BREW")),
            // Methods are case-sensitive (RFC 9110 §9.1).
            ("get", .other("get")), ("Get", .other("Get")), ("post", .other("post")),
            ("M-SEARCH", .other("M-SEARCH")),
        ]
        for (token, method) in expected {
            let head = try self.head("\(token) / HTTP/1.1\r\nHost: x\r\n\r\n")
            XCTAssertEqual(head.method, method, "method \(token)")
            XCTAssertEqual(head.method.description, token)
        }
    }

    func testRequestTargetIsKeptExactlyAsSent() throws {
        let targets = [
            "/", "/a/b%20c?x=1&y=%2F;z", "/~!$&'()*+,;=:@-._", "*", "http://example.com:8080/p?q=1", "example.com:443",
            "/UPPER/lower?Q=%7e", "/%00%FF",
        ]
        for target in targets {
            let head = try self.head("OPTIONS \(target) HTTP/1.1\r\nHost: x\r\n\r\n")
            XCTAssertEqual(head.uri, target)
        }
    }

    func testContentLengthBodyInOnePart() throws {
        var feeder = Feeder()
        feeder.feed(utf8("POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"))
        XCTAssertNil(feeder.error)
        XCTAssertEqual(self.kinds(feeder.events), ["head", "body", "end"])
        XCTAssertEqual(feeder.events.dropFirst().first, .body(utf8("hello")))
        let head = try XCTUnwrap(feeder.heads.first)
        XCTAssertEqual(head.method, .post)
        XCTAssertEqual(head.contentLength, 5)
        XCTAssertFalse(head.isChunked)
        XCTAssertTrue(head.hasBody)
        XCTAssertTrue(feeder.parser.isBetweenRequests)
        XCTAssertEqual(feeder.buffer.readableBytes, 0)
    }

    func testContentLengthBodyInSeveralParts() {
        var feeder = Feeder()
        feeder.feed(utf8("POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhel"))
        XCTAssertEqual(self.kinds(feeder.events), ["head", "body"])
        XCTAssertEqual(feeder.events.last, .body(utf8("hel")))
        XCTAssertFalse(feeder.parser.isBetweenRequests, "in the middle of a body")

        feeder.feed(utf8("lo "))
        XCTAssertEqual(self.kinds(feeder.events), ["head", "body", "body"])
        XCTAssertEqual(feeder.events.last, .body(utf8("lo ")))
        XCTAssertFalse(feeder.parser.isBetweenRequests)

        feeder.feed(utf8("world"))
        XCTAssertNil(feeder.error)
        XCTAssertEqual(self.kinds(feeder.events), ["head", "body", "body", "body", "end"])
        XCTAssertEqual(self.body(feeder.events), utf8("hello world"))
        XCTAssertTrue(feeder.parser.isBetweenRequests)
    }

    func testContentLengthZeroHasNoBody() throws {
        let events = self.assertParses("POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        XCTAssertEqual(self.kinds(events), ["head", "end"])
        let head = try self.head("POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        XCTAssertEqual(head.contentLength, 0)
        XCTAssertFalse(head.hasBody)
    }

    func testRequestWithoutFramingHeadersHasNoBody() throws {
        // RFC 9112 §6.3: a request with neither Transfer-Encoding nor Content-Length has no body; the next bytes
        // are the next request.
        var feeder = Feeder()
        feeder.feed(utf8("POST /p HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n"))
        XCTAssertNil(feeder.error)
        XCTAssertEqual(self.kinds(feeder.events), ["head", "end", "head", "end"])
        XCTAssertEqual(feeder.heads.map(\.uri), ["/p", "/next"])
        XCTAssertFalse(feeder.heads[0].hasBody)
    }

    func testByteByByteFeedingMatchesOneShot() {
        let input = utf8(pipelinedSample)
        let oneShot = parseOneShot(input)
        let byteByByte = parseByteByByte(input)
        XCTAssertNil(oneShot.error)
        XCTAssertTrue(byteByByte.matches(oneShot), "byte by byte: \(byteByByte)\none piece: \(oneShot)")
        XCTAssertEqual(
            self.body(byteByByte.events),
            utf8("hello world") + utf8("chunk0123456789-abcdefghij"),
            "the concatenated body parts"
        )
    }

    func testChunkedBody() throws {
        let input =
            chunkedHead + "5;name=val\r\nhello\r\n" + "A\r\n0123456789\r\n" + "a\r\nabcdefghij\r\n"
            + "1 ; ext=\"quoted value\" ;flag\r\n!\r\n" + "0\r\nX-Trailer: t\r\nOther: u\r\n\r\n"
        let events = self.assertParses(input)
        XCTAssertEqual(self.kinds(events), ["head", "body", "end"])
        XCTAssertEqual(self.body(events), utf8("hello0123456789abcdefghij!"))

        let head = try self.head(input)
        XCTAssertTrue(head.isChunked)
        XCTAssertNil(head.contentLength)
        XCTAssertTrue(head.hasBody)
        XCTAssertNil(head.first(name: "X-Trailer"), "trailers are not header fields")

        // One piece: one body part per chunk, in order.
        var feeder = Feeder()
        feeder.feed(utf8(input))
        XCTAssertEqual(
            feeder.events.dropFirst(),
            [.body(utf8("hello")), .body(utf8("0123456789")), .body(utf8("abcdefghij")), .body(utf8("!")), .end]
        )
    }

    func testChunkSizesInUpperAndLowerCaseHex() {
        let big = [UInt8](repeating: UInt8(ascii: "z"), count: 0xFf)
        let input = utf8(chunkedHead + "1a\r\n") + [UInt8](repeating: UInt8(ascii: "y"), count: 0x1A) + utf8("\r\n")
            + utf8("Ff\r\n") + big + utf8("\r\n") + utf8("B\r\nBBBBBBBBBBB\r\n") + utf8("00\r\n\r\n")
        let events = self.assertParses(input)
        XCTAssertEqual(
            self.body(events),
            [UInt8](repeating: UInt8(ascii: "y"), count: 26) + big + utf8("BBBBBBBBBBB")
        )
    }

    func testChunkedCodingNameIsCaseInsensitive() throws {
        let input = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
        XCTAssertEqual(self.body(self.assertParses(input)), utf8("ok"))
        XCTAssertTrue(try self.head(input).isChunked)
    }

    func testChunkedBodyWithoutTrailersAndEmptyChunkedBody() {
        XCTAssertEqual(self.body(self.assertParses(chunkedHead + "3\r\nabc\r\n0\r\n\r\n")), utf8("abc"))
        XCTAssertEqual(self.kinds(self.assertParses(chunkedHead + "0\r\n\r\n")), ["head", "end"])
    }

    func testChunkWithLongButAcceptedExtension() {
        let extensionText = ";x=" + String(repeating: "e", count: 500)
        XCTAssertEqual(self.body(self.assertParses(chunkedHead + "3\(extensionText)\r\nabc\r\n0\r\n\r\n")), utf8("abc"))
    }

    func testPipelinedRequests() {
        var feeder = Feeder()
        feeder.feed(utf8(pipelinedSample))
        XCTAssertNil(feeder.error)
        XCTAssertEqual(
            self.kinds(feeder.events),
            ["head", "end", "head", "body", "end", "head", "body", "body", "body", "end"]
        )
        XCTAssertEqual(feeder.heads.map(\.uri), ["/first", "/second?x=1", "/third"])
        XCTAssertEqual(feeder.heads.map(\.method), [.get, .post, .put])
        XCTAssertEqual(feeder.events[3], .body(utf8("hello world")))
        XCTAssertEqual(
            Array(feeder.events[6...8]),
            [.body(utf8("chunk")), .body(utf8("0123456789")), .body(utf8("-abcdefghij"))]
        )
        XCTAssertTrue(feeder.parser.isBetweenRequests)
        XCTAssertEqual(feeder.buffer.readableBytes, 0)
        self.assertParses(pipelinedSample)
    }

    func testPipelinedRequestAfterPartialNextRequest() {
        // The first request's body is complete; the next request's head has only begun.
        var feeder = Feeder()
        feeder.feed(utf8("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nokGET /b HT"))
        XCTAssertEqual(self.kinds(feeder.events), ["head", "body", "end"])
        XCTAssertEqual(feeder.events[1], .body(utf8("ok")))
        XCTAssertFalse(feeder.parser.isBetweenRequests, "part of the next request was read")
        feeder.feed(utf8("TP/1.1\r\nHost: x\r\n\r\n"))
        XCTAssertNil(feeder.error)
        XCTAssertEqual(self.kinds(feeder.events), ["head", "body", "end", "head", "end"])
        XCTAssertEqual(feeder.heads.last?.uri, "/b")
    }

    func testLFOnlyLineEndings() throws {
        let input = "POST /lf HTTP/1.1\nHost: x\nContent-Length: 3\nX-A: b\n\nabc"
        let events = self.assertParses(input)
        XCTAssertEqual(self.kinds(events), ["head", "body", "end"])
        XCTAssertEqual(self.body(events), utf8("abc"))
        let head = try self.head(input)
        XCTAssertEqual(head.uri, "/lf")
        XCTAssertEqual(head.first(name: "x-a"), "b")
        XCTAssertEqual(head.headers.map { $0.name }, ["Host", "Content-Length", "X-A"])

        // Chunked with LF-only lines.
        let chunked = "POST / HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n\n3\nabc\n2;e=1\nde\n0\nT: 1\n\n"
        XCTAssertEqual(self.body(self.assertParses(chunked)), utf8("abcde"))

        // No header fields at all (HTTP/1.0).
        XCTAssertEqual(self.kinds(self.assertParses("GET / HTTP/1.0\n\n")), ["head", "end"])
    }

    func testLeadingEmptyLinesAreIgnored() throws {
        let events = self.assertParses("\r\n\r\n\n" + sampleHead)
        XCTAssertEqual(self.kinds(events), ["head", "end"])
        XCTAssertEqual(try self.head("\r\n\r\n" + sampleHead).uri, "/index.html")
        // Also between pipelined requests.
        XCTAssertEqual(self.kinds(self.assertParses(sampleHead + "\r\n" + sampleHead)), ["head", "end", "head", "end"])
    }

    func testHTTP10WithoutHostIsAccepted() throws {
        let input = "GET /old HTTP/1.0\r\nAccept: */*\r\n\r\n"
        XCTAssertEqual(self.kinds(self.assertParses(input)), ["head", "end"])
        let head = try self.head(input)
        XCTAssertEqual(head.minorVersion, 0)
        XCTAssertNil(head.first(name: "Host"))
    }

    func testValuesAreTrimmedOfSpacesAndTabs() throws {
        let head = try self.head(
            "GET / HTTP/1.1\r\nHost:x\r\nX-A: \t v a\tl \t \r\nX-Empty: \t \r\nX-None:\r\nX-Inner:a  b\r\n\r\n"
        )
        XCTAssertEqual(head.first(name: "host"), "x")
        XCTAssertEqual(head.first(name: "x-a"), "v a\tl")
        XCTAssertEqual(head.first(name: "x-empty"), "")
        XCTAssertEqual(head.first(name: "x-none"), "")
        XCTAssertEqual(head.first(name: "x-inner"), "a  b")
    }

    func testObsTextIsAllowedInValues() throws {
        let value: [UInt8] = utf8("caf") + [0xC3, 0xA9, 0x20, 0x80, 0xFF, 0xA0] + utf8("!")
        let input = utf8("GET / HTTP/1.1\r\nHost: x\r\nX-Bin: ") + value + utf8("\r\n\r\n")
        self.assertParses(input)
        let head = try self.head(input)
        var seen: [UInt8]?
        head.forEachHeader { name, fieldValue in
            if RequestHead.equalsIgnoringCase(name, "x-bin") { seen = Array(fieldValue) }
            return true
        }
        XCTAssertEqual(seen, value)
        XCTAssertEqual(head.first(name: "X-Bin")?.hasPrefix("café"), true)
    }

    func testDuplicateIdenticalContentLengthIsAccepted() throws {
        for fields in ["Content-Length: 5, 5\r\n", "Content-Length: 5\r\nContent-Length: 5\r\n", "Content-Length: 5,5,5\r\n"] {
            let input = "POST / HTTP/1.1\r\nHost: x\r\n\(fields)\r\nhello"
            XCTAssertEqual(self.body(self.assertParses(input)), utf8("hello"), fields)
            XCTAssertEqual(try self.head(input).contentLength, 5, fields)
        }
    }

    func testLargestContentLengthIsAccepted() throws {
        // 15 digits is the most the parser takes; the head is accepted and the body awaited.
        var feeder = Feeder()
        feeder.feed(utf8("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999999\r\n\r\nab"))
        XCTAssertNil(feeder.error)
        XCTAssertEqual(feeder.heads.first?.contentLength, 999_999_999_999_999)
        XCTAssertEqual(feeder.events.last, .body(utf8("ab")))
    }

    func testExpectation() throws {
        let head = try self.head("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx")
        XCTAssertEqual(head.expectation, "100-continue")
    }

    func testUpgradeNeedsConnectionTokenAndUpgradeHeader() throws {
        let both = try self.head("GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n")
        XCTAssertTrue(both.isUpgrade)
        XCTAssertTrue(both.keepAlive)
        XCTAssertTrue(try self.head("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nconnection: UPGRADE\r\n\r\n").isUpgrade)
        XCTAssertFalse(try self.head("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n").isUpgrade)
        XCTAssertFalse(try self.head("GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\n\r\n").isUpgrade)
        XCTAssertFalse(try self.head("GET / HTTP/1.1\r\nHost: x\r\nConnection: upgraded\r\nUpgrade: ws\r\n\r\n").isUpgrade)
    }

    // MARK: Keep-alive and versions

    func testHTTP11IsKeepAliveByDefault() throws {
        XCTAssertTrue(try self.head(sampleHead).keepAlive)
        XCTAssertTrue(try self.head("GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n").keepAlive)
        XCTAssertTrue(try self.head("GET / HTTP/1.1\r\nHost: x\r\nConnection: closed, x-close\r\n\r\n").keepAlive)
    }

    func testConnectionCloseEndsKeepAlive() throws {
        for value in ["close", "Close", "CLOSE", "foo, Close", "keep-alive, close", " close ", "a,,close,"] {
            let head = try self.head("GET / HTTP/1.1\r\nHost: x\r\nConnection: \(value)\r\n\r\n")
            XCTAssertFalse(head.keepAlive, "Connection: \(value)")
        }
        // In a second Connection field.
        XCTAssertFalse(try self.head("GET / HTTP/1.1\r\nHost: x\r\nConnection: foo\r\nConnection: close\r\n\r\n").keepAlive)
    }

    func testHTTP10IsNotKeepAliveByDefault() throws {
        let head = try self.head("GET / HTTP/1.0\r\n\r\n")
        XCTAssertEqual(head.minorVersion, 0)
        XCTAssertFalse(head.keepAlive)
    }

    func testHTTP10WithKeepAlive() throws {
        XCTAssertTrue(try self.head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keepAlive)
        XCTAssertTrue(try self.head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keepAlive)
        XCTAssertTrue(try self.head("GET / HTTP/1.0\r\nHost: x\r\nConnection: foo, keep-alive\r\n\r\n").keepAlive)
        XCTAssertFalse(try self.head("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n").keepAlive)
    }

    func testLaterMinorVersionIsTreatedAsHTTP11() throws {
        let head = try self.head("GET / HTTP/1.2\r\nHost: x\r\n\r\n")
        XCTAssertEqual(head.minorVersion, 1)
        XCTAssertTrue(head.keepAlive)
        XCTAssertEqual(try self.head("GET / HTTP/1.9\r\nHost: x\r\n\r\n").minorVersion, 1)
    }

    // MARK: Request-line errors

    func testMalformedRequestLinesAre400() {
        let rest = utf8("\r\nHost: x\r\n\r\n")
        let lines: [[UInt8]] = [
            utf8("GET"),  // method only
            utf8("GET /"),  // no version
            utf8("GET / "),  // empty version
            utf8("/ HTTP/1.1"),  // no method
            utf8(" GET / HTTP/1.1"),  // leading space
            utf8("GET  / HTTP/1.1"),  // two spaces
            utf8("GET /  HTTP/1.1"),
            utf8("GET / HTTP/1.1 "),  // trailing space
            utf8("GET / HTTP/1.1 extra"),
            utf8("GET / http/1.1"),  // lower-case version
            utf8("GET / Http/1.1"),
            utf8("GET / HTTP/1"),
            utf8("GET / HTTP/1.10"),
            utf8("GET / HTTP/11.1"),
            utf8("GET / HTTP/1.x"),
            utf8("GET / HTTP/x.1"),
            utf8("GET / HTTPS/1.1"),
            utf8("GET / HTTP 1.1"),
            utf8("GET\t/ HTTP/1.1"),  // tab instead of space
            utf8("GET /\tHTTP/1.1"),
            utf8("G(T / HTTP/1.1"),  // not a token
            utf8("GET /a\u{01}b HTTP/1.1"),  // control bytes in the target
            utf8("GET /a\u{00}b HTTP/1.1"),
            utf8("GET /a\u{7F}b HTTP/1.1"),
            utf8("GET /a") + [0x80] + utf8(" HTTP/1.1"),  // bytes ≥ 0x80 in the target
            utf8("GET /") + [0xFF] + utf8(" HTTP/1.1"),
            utf8("GET /caf") + [0xC3, 0xA9] + utf8(" HTTP/1.1"),
            utf8("GET / HTTP/1.1\r"),  // bare CR before the CRLF
        ]
        for line in lines {
            self.assertStatus(400, line + rest)
        }
    }

    func testUnsupportedMajorVersionIs505() {
        for version in ["HTTP/2.0", "HTTP/0.9", "HTTP/3.0", "HTTP/0.1", "HTTP/9.9"] {
            self.assertStatus(505, "GET / \(version)\r\nHost: x\r\n\r\n")
        }
    }

    // MARK: Header errors

    func testHTTP11WithoutHostIs400() {
        self.assertStatus(400, "GET / HTTP/1.1\r\n\r\n")
        self.assertStatus(400, "GET / HTTP/1.1\r\nAccept: */*\r\nX-Host: x\r\n\r\n")
    }

    func testTwoHostFieldsAre400() {
        self.assertStatus(400, "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        self.assertStatus(400, "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n")
        self.assertStatus(400, "GET / HTTP/1.0\r\nHOST: a\r\nHost: b\r\n\r\n")
    }

    func testObsFoldIs400() {
        self.assertStatus(400, "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n")
        self.assertStatus(400, "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n")
        self.assertStatus(400, "GET / HTTP/1.1\r\n Host: x\r\n\r\n")  // whitespace before the first field
    }

    func testWhitespaceBeforeColonIs400() {
        self.assertStatus(400, "GET / HTTP/1.1\r\nHost : x\r\n\r\n")
        self.assertStatus(400, "GET / HTTP/1.1\r\nHost: x\r\nX-A\t: b\r\n\r\n")
    }

    func testMalformedFieldNamesAre400() {
        self.assertStatus(400, "GET / HTTP/1.1\r\nHost: x\r\n: empty name\r\n\r\n")
        self.assertStatus(400, "GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n")
        self.assertStatus(400, "GET / HTTP/1.1\r\nHost: x\r\nX(A): b\r\n\r\n")
        self.assertStatus(400, utf8("GET / HTTP/1.1\r\nHost: x\r\nX") + [0xC3, 0xA9] + utf8(": b\r\n\r\n"))
    }

    func testControlBytesInValuesAre400() {
        for bad: [UInt8] in [[0x00], [0x0D], [0x7F], [0x01], [0x1B], [0x0B]] {
            self.assertStatus(400, utf8("GET / HTTP/1.1\r\nHost: x\r\nX-A: a") + bad + utf8("b\r\n\r\n"))
        }
        // A bare CR at the end of a value (before CRLF, or before a bare LF).
        self.assertStatus(400, "GET / HTTP/1.1\r\nHost: x\r\nX-A: ab\r\r\n\r\n")
        self.assertStatus(400, "GET / HTTP/1.1\r\nHost: x\r\nX-A: ab\r\n\r\rX\r\n\r\n")
    }

    func testInvalidContentLengthIs400() {
        for value in ["abc", "-5", "+5", "5a", "0x10", "5 5", "1.5", "", "5;", "\u{FF10}"] {
            self.assertStatus(400, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \(value)\r\n\r\nhello")
        }
    }

    func testConflictingContentLengthIs400() {
        self.assertStatus(400, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello!")
        self.assertStatus(400, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!")
        self.assertStatus(400, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 05\r\nContent-Length: 6\r\n\r\nhello!")
    }

    func testEmptyContentLengthAfterAValidOneIs400() {
        // An empty Content-Length is not a number; a second, empty field must not pass because a first one was valid.
        self.assertStatus(400, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: \r\n\r\nhello")
    }

    func testContentLengthWith16DigitsOrMoreIs413() {
        for value in ["1234567890123456", "9999999999999999999999", "0000000000000005"] {
            self.assertStatus(413, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \(value)\r\n\r\nhello")
        }
    }

    func testTransferEncodingWithContentLengthIs400() {
        // Request smuggling (RFC 9112 §6.1): both framings, in either order.
        self.assertStatus(
            400,
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        )
        self.assertStatus(
            400,
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"
        )
        self.assertStatus(
            400,
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n0\r\n\r\n"
        )
    }

    func testUnsupportedTransferCodingIs501() {
        for value in ["gzip", "gzip, chunked", "deflate", "x-custom"] {
            self.assertStatus(501, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \(value)\r\n\r\n0\r\n\r\n")
        }
        self.assertStatus(
            501,
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        )
    }

    func testChunkedTwiceIs400() {
        self.assertStatus(400, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n")
        self.assertStatus(
            400,
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        )
    }

    func testTransferEncodingInHTTP10Is400() {
        self.assertStatus(400, "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        self.assertStatus(400, "POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    }

    // MARK: Chunked-body errors

    func testBadChunkSizeIs400() {
        for line in ["zz", "", "-1", "5x", "0x5", " 5", "g", ";ext"] {
            self.assertStatus(400, chunkedHead + "\(line)\r\nhello\r\n0\r\n\r\n")
        }
    }

    func testChunkSizeWith16HexDigitsOrMoreIs413() {
        for size in ["1234567890abcdef", "FFFFFFFFFFFFFFFFF", "0000000000000001"] {
            self.assertStatus(413, chunkedHead + "\(size)\r\nx\r\n0\r\n\r\n")
        }
    }

    func testChunkSizeWith15HexDigitsIsAccepted() {
        var feeder = Feeder()
        feeder.feed(utf8(chunkedHead + "fffffffffffffff\r\nabc"))
        XCTAssertNil(feeder.error)
        XCTAssertEqual(self.kinds(feeder.events), ["head", "body"])
        XCTAssertEqual(feeder.events.last, .body(utf8("abc")))
    }

    func testMissingCRLFAfterChunkDataIs400() {
        self.assertStatus(400, chunkedHead + "5\r\nhelloX\r\n0\r\n\r\n")
        self.assertStatus(400, chunkedHead + "5\r\nhello0\r\n\r\n")
        self.assertStatus(400, chunkedHead + "5\r\nhello\rX\r\n0\r\n\r\n")
        self.assertStatus(400, chunkedHead + "5\r\nhello\rX0\r\n\r\n")  // CR then not LF
        // The data before the error is delivered.
        var feeder = Feeder()
        feeder.feed(utf8(chunkedHead + "5\r\nhelloX"))
        XCTAssertEqual(feeder.error?.code.status, 400)
        XCTAssertEqual(feeder.events.last, .body(utf8("hello")))
    }

    func testOverlongChunkSizeLineIs400() {
        let longExtension = ";x=" + String(repeating: "e", count: 1100)
        // Without a newline yet.
        self.assertStatus(400, chunkedHead + "1\(longExtension)")
        // With one.
        self.assertStatus(400, chunkedHead + "1\(longExtension)\r\nx\r\n0\r\n\r\n")
        // Leading zeros make no difference.
        self.assertStatus(400, chunkedHead + String(repeating: "0", count: 1100))
    }

    // MARK: Limits

    private let small = HTTPRequestParser.Limits(maxURIBytes: 32, maxHeaderBytes: 64, maxHeaderFields: 4)

    func testDefaultLimits() {
        let limits = HTTPRequestParser.Limits()
        XCTAssertEqual(limits.maxURIBytes, 8192)
        XCTAssertEqual(limits.maxHeaderBytes, 16384)
        XCTAssertEqual(limits.maxHeaderFields, 256)

        let target = "/" + String(repeating: "a", count: 8191)
        self.assertParses("GET \(target) HTTP/1.1\r\nHost: x\r\n\r\n", byteByByte: false)
        self.assertStatus(414, "GET \(target)a HTTP/1.1\r\nHost: x\r\n\r\n", byteByByte: false)

        // "Host: x\r\n" (9) + "X-Pad: " (7) + padding + CRLF (2) = 16384.
        let padding = String(repeating: "p", count: 16384 - 18)
        self.assertParses("GET / HTTP/1.1\r\nHost: x\r\nX-Pad: \(padding)\r\n\r\n", byteByByte: false)
        self.assertStatus(431, "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: \(padding)p\r\n\r\n", byteByByte: false)

        let fields = String(repeating: "X: 1\r\n", count: 255)
        self.assertParses("GET / HTTP/1.1\r\nHost: x\r\n\(fields)\r\n", byteByByte: false)
        self.assertStatus(431, "GET / HTTP/1.1\r\nHost: x\r\n\(fields)X: 1\r\n\r\n", byteByByte: false)
    }

    func testTargetAtLimitIsAccepted() throws {
        let target = "/" + String(repeating: "a", count: 31)
        self.assertParses("GET \(target) HTTP/1.1\r\nHost: x\r\n\r\n", limits: self.small)
        XCTAssertEqual(try self.head("GET \(target) HTTP/1.1\r\nHost: x\r\n\r\n", limits: self.small).uri, target)
    }

    func testTargetOverLimitIs414() {
        let target = "/" + String(repeating: "a", count: 32)
        self.assertStatus(414, "GET \(target) HTTP/1.1\r\nHost: x\r\n\r\n", limits: self.small)
        // Even when the request line is otherwise malformed later on: the target is too long first.
        self.assertStatus(414, "GET \(target) HTTP/1.1\r\n\r\n", limits: self.small)
    }

    func testTargetOverLimitIs414BeforeTheHeadEnds() {
        // The request line is complete, the header section is not: the target is already known to be too long.
        let target = "/" + String(repeating: "a", count: 32)
        for input in ["GET \(target) HTTP/1.1\r\n", "GET \(target) HTTP/1.1\r\nHost: x\r\n"] {
            let outcome = parseOneShot(utf8(input), limits: self.small)
            XCTAssertEqual(outcome.error?.code.status, 414, "input \(escaped(utf8(input))) gave \(outcome)")
        }
    }

    func testIncompleteRequestLineOverLimitIs414() {
        // maxURIBytes + 64 bytes is room for any method and version around a target at the limit; more without a
        // newline can only be a target over the limit.
        let input = "GET /" + String(repeating: "a", count: 32 + 64)
        XCTAssertGreaterThan(input.utf8.count, 32 + 64)
        let outcome = parseOneShot(utf8(input), limits: self.small)
        XCTAssertEqual(outcome.error?.code.status, 414, "gave \(outcome)")

        // Byte by byte, it is refused as soon as it is over, without waiting for the end of the line.
        var parser = HTTPRequestParser(limits: self.small)
        var buffer = ByteBuffer()
        var refusedAt: Int?
        for count in 1...1000 {
            buffer.writeInteger(count <= 5 ? utf8("GET /")[count - 1] : UInt8(ascii: "a"))
            do {
                let event = try parser.next(&buffer)
                XCTAssertNil(event, "no event can come from a partial request line")
            } catch {
                XCTAssertEqual(error.code.status, 414)
                refusedAt = count
                break
            }
        }
        let at = try? XCTUnwrap(refusedAt, "a request line of 1000 bytes was never refused")
        XCTAssertLessThanOrEqual(at ?? .max, 32 + 64 + 1, "refused only after \(at ?? -1) bytes")
    }

    func testRequestLineAtLimitArrivingByteByByteIsAccepted() {
        // The longest accepted target with a long (valid) method, fed byte by byte: no early refusal.
        let target = "/" + String(repeating: "a", count: 31)
        self.assertParses("LONG-METHOD-NAME \(target) HTTP/1.1\r\nHost: x\r\n\r\n", limits: self.small)
    }

    func testHeaderSectionAtLimitIsAccepted() {
        // "Host: x\r\n" (9) + "X-Pad: " (7) + 46 + CRLF (2) = 64 bytes.
        let padding = String(repeating: "p", count: 46)
        self.assertParses("GET / HTTP/1.1\r\nHost: x\r\nX-Pad: \(padding)\r\n\r\n", limits: self.small)
        // With LF-only line endings: "Host: x\n" (8) + "X-Pad: " (7) + 48 + LF (1) = 64 bytes.
        let lfPadding = String(repeating: "p", count: 48)
        self.assertParses("GET / HTTP/1.1\nHost: x\nX-Pad: \(lfPadding)\n\n", limits: self.small)
    }

    func testHeaderSectionOverLimitIs431() {
        let padding = String(repeating: "p", count: 47)
        self.assertStatus(431, "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: \(padding)\r\n\r\n", limits: self.small)
        let lfPadding = String(repeating: "p", count: 49)
        self.assertStatus(431, "GET / HTTP/1.1\nHost: x\nX-Pad: \(lfPadding)\n\n", limits: self.small)
    }

    func testIncompleteHeaderSectionOverLimitIs431() {
        // One long unfinished field line.
        let long = "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + String(repeating: "p", count: 100)
        XCTAssertEqual(parseOneShot(utf8(long), limits: self.small).error?.code.status, 431)
        // Many complete field lines, no blank line yet.
        let many = "GET / HTTP/1.1\r\nHost: x\r\n" + String(repeating: "A: 123456789\r\n", count: 6)
        XCTAssertEqual(parseOneShot(utf8(many), limits: self.small).error?.code.status, 431)

        // Byte by byte, it is refused as soon as no valid header section can be that long: at the latest when the
        // bytes after the request line are over the limit plus a CR.
        let requestLine = utf8("GET / HTTP/1.1\r\n")
        var parser = HTTPRequestParser(limits: self.small)
        var buffer = ByteBuffer()
        var refusedAfterHeaderBytes: Int?
        let input = requestLine + utf8("Host: x\r\n") + [UInt8](repeating: UInt8(ascii: "h"), count: 1000)
        for (index, byte) in input.enumerated() {
            buffer.writeInteger(byte)
            do {
                let event = try parser.next(&buffer)
                XCTAssertNil(event, "no event can come from a partial head")
            } catch {
                XCTAssertEqual(error.code.status, 431)
                refusedAfterHeaderBytes = index + 1 - requestLine.count
                break
            }
        }
        let at = try? XCTUnwrap(refusedAfterHeaderBytes, "an unfinished header section of 1000 bytes was never refused")
        XCTAssertLessThanOrEqual(at ?? .max, 64 + 2, "refused only after \(at ?? -1) header bytes")
    }

    func testHeaderFieldCount() {
        let limits = HTTPRequestParser.Limits(maxURIBytes: 32, maxHeaderBytes: 1024, maxHeaderFields: 4)
        self.assertParses("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits: limits)
        self.assertStatus(431, "GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", limits: limits)
        self.assertStatus(431, "GET / HTTP/1.1\r\nHost: x\r\n" + String(repeating: "A: 1\r\n", count: 50) + "\r\n", limits: limits)
    }

    func testTrailersAtLimitAreAccepted() {
        // The head's header section is 37 bytes; trailers have their own budget of maxHeaderBytes.
        // "X-T: " (5) + 57 + CRLF (2) = 64 bytes.
        let trailer = "X-T: " + String(repeating: "t", count: 57) + "\r\n"
        let events = self.assertParses(chunkedHead + "3\r\nabc\r\n0\r\n\(trailer)\r\n", limits: self.small)
        XCTAssertEqual(self.body(events), utf8("abc"))
        XCTAssertEqual(self.kinds(events), ["head", "body", "end"])
        // Several lines: 4 × 15 = 60 bytes.
        self.assertParses(
            chunkedHead + "0\r\n" + String(repeating: "A: 1234567890\r\n", count: 4) + "\r\n",
            limits: self.small
        )
    }

    func testTrailersOverLimitAre431() {
        let trailer = "X-T: " + String(repeating: "t", count: 58) + "\r\n"
        self.assertStatus(431, chunkedHead + "3\r\nabc\r\n0\r\n\(trailer)\r\n", limits: self.small)
        // Several lines: 5 × 15 = 75 bytes.
        self.assertStatus(
            431,
            chunkedHead + "0\r\n" + String(repeating: "A: 1234567890\r\n", count: 5) + "\r\n",
            limits: self.small
        )
        // An unfinished trailer line already over the limit.
        let outcome = parseOneShot(
            utf8(chunkedHead + "0\r\nX-T: " + String(repeating: "t", count: 200)),
            limits: self.small
        )
        XCTAssertEqual(outcome.error?.code.status, 431, "gave \(outcome)")
    }

    // MARK: Robustness

    func testEverySplitPointGivesTheSameResult() {
        let inputs = [
            utf8(pipelinedSample),
            utf8("\r\n" + sampleHead + "POST / HTTP/1.1\nHost: x\nContent-Length: 3\n\nabc"),
            utf8(chunkedHead + "5;a=b\r\nhello\r\n0\r\nT: 1\r\n\r\n"),
        ]
        for input in inputs {
            let reference = parseOneShot(input)
            XCTAssertNil(reference.error)
            for split in 0...input.count {
                let outcome = parse(input, splitAt: split)
                XCTAssertTrue(
                    outcome.matches(reference),
                    "split at \(split) of \(escaped(input)): \(outcome)\nexpected \(reference)"
                )
            }
        }
    }

    func testWholeBodiesGiveTheSameResultAtEverySplitPoint() {
        let inputs = [
            utf8(pipelinedSample),
            utf8("\r\n" + sampleHead + "POST / HTTP/1.1\nHost: x\nContent-Length: 3\n\nabc"),
            utf8(chunkedHead + "5;a=b\r\nhello\r\n0\r\nT: 1\r\n\r\n"),
            utf8("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\n"
                + "Content-Length: 2\r\n\r\nhiGET /c HTTP/1.1\r\nHost: x\r\n\r\n"),
            utf8("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhiGARBAGE\r\n\r\n"),  // an error after
        ]
        for input in inputs {
            let reference = parseOneShot(input)
            var taken = 0
            for split in 0...input.count {
                var feeder = Feeder(wholeBodies: true)
                feeder.feed(input[..<split])
                feeder.feed(input[split...])
                taken += feeder.wholeBodiesTaken
                XCTAssertTrue(
                    feeder.outcome.matches(reference),
                    "split at \(split) of \(escaped(input)): \(feeder.outcome)\nexpected \(reference)"
                )
            }
            var oneShot = Feeder(wholeBodies: true)
            oneShot.feed(input)
            XCTAssertTrue(oneShot.outcome.matches(reference))
            let requestsWithLength = oneShot.heads.filter { !$0.isChunked }.count
            XCTAssertEqual(oneShot.wholeBodiesTaken, requestsWithLength, "every request not chunked, taken whole")
            if requestsWithLength > 0 { XCTAssertGreaterThan(taken, 0) }
        }
    }

    func testWholeBodyIsNilForAChunkedOrIncompleteBody() throws {
        var parser = HTTPRequestParser()
        var buffer = ByteBuffer(string: "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabc")
        guard case .head = try parser.next(&buffer) else { return XCTFail("no head") }
        XCTAssertNil(parser.wholeBody(&buffer), "two bytes are missing")
        XCTAssertEqual(buffer.readableBytes, 3, "nothing consumed")
        buffer.writeString("de")
        XCTAssertEqual(parser.wholeBody(&buffer).map { String(buffer: $0) }, "abcde")
        XCTAssertTrue(parser.isBetweenRequests)
        XCTAssertEqual(buffer.readableBytes, 0)

        var chunked = ByteBuffer(string: chunkedHead + "3\r\nabc\r\n0\r\n\r\n")
        guard case .head = try parser.next(&chunked) else { return XCTFail("no head") }
        XCTAssertNil(parser.wholeBody(&chunked), "a chunked body comes as events")
        XCTAssertFalse(parser.isBetweenRequests)
    }

    func testRandomPiecesGiveTheSameResult() {
        var random = LCG(state: 0xC0FFEE)
        let input = utf8(pipelinedSample + pipelinedSample)
        let reference = parseOneShot(input)
        XCTAssertEqual(self.kinds(reference.events).filter { $0 == "end" }.count, 6)
        for round in 0..<200 {
            var feeder = Feeder()
            var offset = 0
            var pieces: [Int] = []
            while offset < input.count {
                let size = min(input.count - offset, 1 + random.int(round % 2 == 0 ? 8 : 64))
                feeder.feed(input[offset..<offset + size])
                pieces.append(size)
                offset += size
            }
            XCTAssertTrue(feeder.outcome.matches(reference), "pieces \(pieces): \(feeder.outcome)")
        }
    }

    /// Parses `input` in one piece and in random pieces: neither may loop, an error must be one of the parser's
    /// statuses, both ways must agree, and whatever was parsed must be well formed.
    /// - Returns: Whether the one-piece parse failed.
    @discardableResult
    private func checkRobust(_ input: [UInt8], random: inout LCG, context: String) -> Bool {
        let oneShot = parseOneShot(input)
        XCTAssertFalse(oneShot.runaway, "\(context): runaway for \(escaped(input))")
        if let error = oneShot.error {
            XCTAssertTrue(parserStatuses.contains(error.code.status), "\(context): \(error) for \(escaped(input))")
            XCTAssertFalse(error.reason.isEmpty)
        }
        let violations = invariantViolations(oneShot.events)
        XCTAssertEqual(violations, [], "\(context): \(escaped(input)) gave \(oneShot)")

        var feeder = Feeder()
        var offset = 0
        var pieces: [Int] = []
        while offset < input.count {
            let size = min(input.count - offset, 1 + random.int(16))
            feeder.feed(input[offset..<offset + size])
            pieces.append(size)
            offset += size
        }
        let split = feeder.outcome
        XCTAssertTrue(
            split.matches(oneShot),
            "\(context): pieces \(pieces) of \(escaped(input))\ngave \(split)\none piece gave \(oneShot)"
        )
        return oneShot.error != nil
    }

    func testRandomBytesNeverCrash() {
        var random = LCG(state: 0x5EED_0001)
        let fragments: [[UInt8]] = [
            "GET", "POST", "HEAD", " ", " ", "/", "/a?b=c", "*", "HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.1\r\n",
            "\r\n", "\r\n", "\n", "\r", "\r\n\r\n", "Host: x\r\n", "Host:", ":", ": ", "Content-Length: ",
            "Transfer-Encoding: ", "chunked", "gzip", ",", "0", "5", "3", "a", "F", "ffffffffffffffff",
            "1234567890", ";ext=1", "Connection: close\r\n", "Connection: upgrade", "Upgrade: ws", "hello", "\t",
            "\u{0}", "\u{7F}", "X-Y: z",
        ].map(utf8) + [[0x80], [0xFF], [0xC3, 0xA9]]
        var failures = 0
        var heads = 0
        for iteration in 0..<2000 {
            var input: [UInt8] = []
            if iteration % 4 == 0 {
                for _ in 0..<random.int(200) { input.append(random.byte()) }
            } else {
                // Most inputs start like a request, so the random part reaches the header fields and bodies.
                if iteration % 4 != 1 { input = utf8(["GET / HTTP/1.1\r\n", "POST /p HTTP/1.1\r\nHost: h\r\n", chunkedHead][iteration % 3]) }
                for _ in 0..<random.int(40) { input += fragments[random.int(fragments.count)] }
            }
            if self.checkRobust(input, random: &random, context: "random #\(iteration)") { failures += 1 }
            heads += parseOneShot(input).events.filter { if case .head = $0 { true } else { false } }.count
        }
        XCTAssertGreaterThan(failures, 0, "random bytes should be refused now and then")
        XCTAssertGreaterThan(heads, 0, "random requests should parse now and then")
    }

    func testRandomMutationsOfValidRequestsNeverCrash() {
        var random = LCG(state: 0x5EED_0002)
        let corpus = fuzzCorpus.map(utf8)
        for request in corpus { self.assertParses(request, byteByByte: false) }
        let interesting: [UInt8] = [
            0x0D, 0x0A, 0x20, 0x09, 0x3A, 0x3B, 0x2C, 0x00, 0x7F, 0x80, 0xFF, 0x30, 0x35, 0x39, 0x61, 0x66, 0x46, 0x2F,
        ]
        var failures = 0
        var successes = 0
        for iteration in 0..<2000 {
            var input = corpus[random.int(corpus.count)]
            for _ in 0..<(1 + random.int(4)) {
                let position = random.int(input.count + 1)
                switch random.int(6) {
                case 0 where position < input.count:
                    input[position] = interesting[random.int(interesting.count)]
                case 1:
                    input.insert(interesting[random.int(interesting.count)], at: position)
                case 2 where position < input.count:
                    input.remove(at: position)
                case 3 where input.count < 900:
                    let start = random.int(input.count)
                    let end = min(input.count, start + 1 + random.int(40))
                    input.insert(contentsOf: input[start..<end], at: position)
                case 4 where position < input.count:
                    input.removeSubrange(position..<min(input.count, position + 1 + random.int(20)))
                default:
                    if position < input.count { input[position] = random.byte() }
                }
            }
            if self.checkRobust(input, random: &random, context: "mutation #\(iteration)") {
                failures += 1
            } else {
                successes += 1
            }
        }
        XCTAssertGreaterThan(failures, 0, "mutations should be refused now and then")
        XCTAssertGreaterThan(successes, 0, "some mutations should still parse")
    }

    // MARK: Sticky errors

    func testErrorIsSticky() {
        var parser = HTTPRequestParser()
        var buffer = ByteBuffer(string: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        var first: GatewayError?
        do {
            let event = try parser.next(&buffer)
            XCTFail("expected an error, got \(String(describing: event))")
        } catch {
            first = error
        }
        XCTAssertEqual(first?.code.status, 400)

        buffer.writeString(sampleHead)
        for attempt in 0..<3 {
            do {
                let event = try parser.next(&buffer)
                XCTFail("attempt \(attempt): expected the error again, got \(String(describing: event))")
            } catch {
                XCTAssertEqual(error, first, "attempt \(attempt)")
            }
        }
        // Even with a fresh buffer holding a valid request.
        var fresh = ByteBuffer(string: sampleHead)
        do {
            let event = try parser.next(&fresh)
            XCTFail("expected the error again, got \(String(describing: event))")
        } catch {
            XCTAssertEqual(error, first)
        }
    }

    func testErrorInBodyIsSticky() {
        var feeder = Feeder()
        feeder.feed(utf8(chunkedHead + "3\r\nabcX"))
        let first = feeder.error
        XCTAssertEqual(first?.code.status, 400)
        var buffer = ByteBuffer(string: "\r\n0\r\n\r\n" + sampleHead)
        do {
            let event = try feeder.parser.next(&buffer)
            XCTFail("expected the error again, got \(String(describing: event))")
        } catch {
            XCTAssertEqual(error, first)
        }
    }

    func testLimitErrorIsSticky() {
        var parser = HTTPRequestParser(limits: self.small)
        var buffer = ByteBuffer(string: "GET /" + String(repeating: "a", count: 200))
        var first: GatewayError?
        do {
            _ = try parser.next(&buffer)
        } catch {
            first = error
        }
        XCTAssertEqual(first?.code.status, 414)
        var valid = ByteBuffer(string: sampleHead)
        do {
            let event = try parser.next(&valid)
            XCTFail("expected the error again, got \(String(describing: event))")
        } catch {
            XCTAssertEqual(error, first)
        }
    }

    // MARK: Empty lines and partial input

    func testOnlyLineEndingsReturnNil() throws {
        for filler in ["\r\n", "\n", "\r\n\n"] {
            var parser = HTTPRequestParser()
            var buffer = ByteBuffer(string: String(repeating: filler, count: 1000))
            let event = try parser.next(&buffer)
            XCTAssertNil(event, "filler \(filler.debugDescription)")
            XCTAssertTrue(parser.isBetweenRequests, "filler \(filler.debugDescription)")
            let again = try parser.next(&buffer)
            XCTAssertNil(again)
            XCTAssertTrue(parser.isBetweenRequests)

            // A request after them still parses.
            buffer.writeString(sampleHead)
            let head = try parser.next(&buffer)
            guard case .head(let parsed)? = head else { return XCTFail("expected a head, got \(String(describing: head))") }
            XCTAssertEqual(parsed.uri, "/index.html")
        }
    }

    func testCRAtTheEndWaitsForItsLF() throws {
        var parser = HTTPRequestParser()
        var buffer = ByteBuffer(string: "\r\n\r")
        let first = try parser.next(&buffer)
        XCTAssertNil(first)
        XCTAssertTrue(parser.isBetweenRequests)
        buffer.writeString("\n" + sampleHead)
        let second = try parser.next(&buffer)
        guard case .head? = second else { return XCTFail("expected a head, got \(String(describing: second))") }
    }

    func testEmptyBufferReturnsNil() throws {
        var parser = HTTPRequestParser()
        var buffer = ByteBuffer()
        let event = try parser.next(&buffer)
        XCTAssertNil(event)
        XCTAssertTrue(parser.isBetweenRequests)
    }

    func testPartialHeadIsNotBetweenRequests() throws {
        var parser = HTTPRequestParser()
        var buffer = ByteBuffer(string: "GE")
        let event = try parser.next(&buffer)
        XCTAssertNil(event)
        XCTAssertFalse(parser.isBetweenRequests)
        buffer.writeString("T / HTTP/1.1\r\nHost: x\r\n\r\n")
        let head = try parser.next(&buffer)
        guard case .head(let parsed)? = head else { return XCTFail("expected a head, got \(String(describing: head))") }
        XCTAssertEqual(parsed.method, .get)
    }

    /// Every byte against RFC 9110 §5.6.2's tchar, spelled out independently of the parser's masks.
    func testTokenBytesAreExactlyTheRFCTchars() {
        let delimiters = Set("!#$%&'*+-.^_`|~".utf8)
        for value in 0...255 {
            let byte = UInt8(value)
            let isDigit = (0x30...0x39).contains(value)
            let isLetter = (0x41...0x5A).contains(value) || (0x61...0x7A).contains(value)
            XCTAssertEqual(HTTPRequestParser.isTokenByte(byte), isDigit || isLetter || delimiters.contains(byte),
                           "byte \(value)")
        }
    }
}
