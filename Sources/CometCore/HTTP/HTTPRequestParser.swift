import NIOCore

/// An incremental HTTP/1.x request parser: bytes in, request heads and body parts out.
///
/// It reads requests one after the other from the same connection (pipelining), takes no copy of the bytes it is
/// given (bodies are slices of the input buffer), and treats every byte as hostile: it enforces the request-target and
/// header limits while the head is still arriving, so a client cannot make it hold or rescan more than the limits.
/// Message framing follows RFC 9112 §6: `Transfer-Encoding: chunked` or `Content-Length`, never both.
///
/// Errors are ``GatewayError``s with the status to answer (400, 413, 414, 431, 501 or 505); after one, the
/// connection's byte stream cannot be trusted, so the parser keeps failing.
public struct HTTPRequestParser: Sendable {
    /// What the parser accepts.
    public struct Limits: Sendable, Equatable {
        /// The longest request target; a longer one is a 414.
        public var maxURIBytes: Int
        /// The most bytes in the header section (field lines with their line endings); more is a 431.
        public var maxHeaderBytes: Int
        /// The most header fields; more is a 431.
        public var maxHeaderFields: Int

        public init(maxURIBytes: Int = 8192, maxHeaderBytes: Int = 16384, maxHeaderFields: Int = 256) {
            self.maxURIBytes = maxURIBytes
            self.maxHeaderBytes = maxHeaderBytes
            self.maxHeaderFields = maxHeaderFields
        }
    }

    /// One step of a request.
    public enum Event: Sendable {
        /// A complete head. Its body (if any) follows as `.body` parts, then `.end`.
        case head(RequestHead)
        /// Body bytes, already de-chunked; a slice of the input.
        case body(ByteBuffer)
        /// The end of the request.
        case end
    }

    private enum State: Sendable {
        /// Reading a head; `scanned` bytes of the buffer were already searched for its end.
        case head(scanned: Int)
        case fixedBody(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers(bytes: Int)
        /// The request is complete; `.end` is the next event.
        case endPending
        case failed(GatewayError)
    }

    /// The longest chunk-size line (with extensions) accepted.
    static let maxChunkLineBytes = 1024
    /// Room for the method and version on a request line around a target of `maxURIBytes`.
    static let requestLineSlack = 64

    private var state = State.head(scanned: 0)
    private let limits: Limits

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Whether the parser is between requests (no part of a request has been consumed).
    public var isBetweenRequests: Bool {
        if case .head(scanned: 0) = self.state { return true }
        return false
    }

    /// Parses the next event from the start of `buffer`, consuming the bytes it used.
    /// - Returns: The event, or `nil` when `buffer` holds too little for the next one.
    /// - Throws: ``GatewayError`` for a malformed or refused request; every later call throws it again.
    public mutating func next(_ buffer: inout ByteBuffer) throws(GatewayError) -> Event? {
        do {
            return try self.step(&buffer)
        } catch {
            self.state = .failed(error)
            throw error
        }
    }

    /// Right after a `.head` event: the request's whole body at once, when it is framed by `Content-Length` and all of
    /// it is in `buffer` (an empty buffer when there is no body), consumed together with the request's end. The
    /// parser is then between requests, as after the `.body` events and the `.end` it would have returned. `nil`
    /// otherwise (a chunked body, or one not all here yet): take the events with ``next(_:)`` as usual.
    ///
    /// It saves a request that arrived whole the two extra events. Call it only right after a `.head`; at any other
    /// time it returns `nil`, or (within a body already partly taken as `.body` events) only the rest of the body.
    public mutating func wholeBody(_ buffer: inout ByteBuffer) -> ByteBuffer? {
        switch self.state {
        case .endPending:
            self.state = .head(scanned: 0)
            return buffer.getSlice(at: buffer.readerIndex, length: 0)  // empty: no allocation
        case .fixedBody(let remaining) where buffer.readableBytes >= remaining:
            self.state = .head(scanned: 0)
            return buffer.readSlice(length: remaining)
        default:
            return nil
        }
    }

    private mutating func step(_ buffer: inout ByteBuffer) throws(GatewayError) -> Event? {
        switch self.state {
        case .failed(let error):
            throw error
        case .endPending:
            self.state = .head(scanned: 0)
            return .end
        case .head(let scanned):
            return try self.parseHead(&buffer, scanned: scanned)
        case .fixedBody(let remaining):
            return self.takeBody(&buffer, remaining: remaining, done: .endPending, more: State.fixedBody)
        case .chunkData(let remaining):
            return self.takeBody(&buffer, remaining: remaining, done: .chunkDataEnd, more: State.chunkData)
        case .chunkDataEnd:
            guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return nil }
            if first == UInt8(ascii: "\n") {
                buffer.moveReaderIndex(forwardBy: 1)
            } else {
                guard first == UInt8(ascii: "\r") else { throw Self.malformed("chunk not followed by CRLF") }
                guard let second = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self) else { return nil }
                guard second == UInt8(ascii: "\n") else { throw Self.malformed("chunk not followed by CRLF") }
                buffer.moveReaderIndex(forwardBy: 2)
            }
            self.state = .chunkSize
            return try self.step(&buffer)
        case .chunkSize:
            guard let line = try Self.takeLine(&buffer, limit: Self.maxChunkLineBytes, tooLong: Self.malformed("chunk size line too long"))
            else { return nil }
            let size = try Self.chunkSize(line)
            self.state = size == 0 ? .trailers(bytes: 0) : .chunkData(remaining: size)
            return try self.step(&buffer)
        case .trailers(let bytes):
            // Trailer fields are read and dropped (the gateway gives them no meaning), within the header limit.
            var total = bytes
            while true {
                let remaining = self.limits.maxHeaderBytes - total
                let tooLarge = GatewayError(.headersTooLarge, "trailer fields too large")
                guard let line = try Self.takeLine(&buffer, limit: max(remaining, 0) + 2, tooLong: tooLarge) else {
                    self.state = .trailers(bytes: total)
                    return nil
                }
                if line.readableBytes == 0 {
                    self.state = .head(scanned: 0)
                    return .end
                }
                total += line.readableBytes + 2
                guard total <= self.limits.maxHeaderBytes else { throw tooLarge }
                try line.withReadableBytes { bytes throws(GatewayError) in
                    _ = try Self.parseField(bytes)
                }
            }
        }
    }

    /// Takes up to `remaining` body bytes (a slice, no copy); the state becomes `done` when they are all taken, else
    /// `more` of what is left.
    private mutating func takeBody(_ buffer: inout ByteBuffer, remaining: Int, done: State,
                                   more: (Int) -> State) -> Event? {
        guard buffer.readableBytes > 0 else { return nil }
        let length = min(remaining, buffer.readableBytes)
        let part = buffer.readSlice(length: length)!
        self.state = length == remaining ? done : more(remaining - length)
        return .body(part)
    }

    // MARK: - Head

    private mutating func parseHead(_ buffer: inout ByteBuffer, scanned: Int) throws(GatewayError) -> Event? {
        // Empty lines before a request line are ignored (RFC 9112 §2.2).
        if scanned == 0 {
            while let byte = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
                  byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") {
                if byte == UInt8(ascii: "\r") {
                    guard let next = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self) else { return nil }
                    guard next == UInt8(ascii: "\n") else { throw Self.malformed("bare CR") }
                    buffer.moveReaderIndex(forwardBy: 2)
                } else {
                    buffer.moveReaderIndex(forwardBy: 1)
                }
            }
        }
        guard buffer.readableBytes > 0 else { return nil }
        let maxRequestLine = self.limits.maxURIBytes + Self.requestLineSlack
        let found = buffer.withUnsafeReadableBytes { bytes in Self.findHeadEnd(bytes, from: scanned) }
        guard let (requestLineEnd, headEnd) = found.end else {
            // Incomplete: refuse as soon as the part received is already over a limit.
            if found.requestLineEnd == nil, buffer.readableBytes > maxRequestLine {
                throw GatewayError(.uriTooLong, "request target longer than \(self.limits.maxURIBytes) bytes")
            }
            if let requestLineEnd = found.requestLineEnd,
               buffer.withUnsafeReadableBytes({ Self.targetLength(UnsafeRawBufferPointer(rebasing: $0[..<requestLineEnd])) })
                > self.limits.maxURIBytes {
                throw GatewayError(.uriTooLong, "request target longer than \(self.limits.maxURIBytes) bytes")
            }
            if let requestLineEnd = found.requestLineEnd,
               buffer.readableBytes - requestLineEnd > self.limits.maxHeaderBytes + 2 {
                throw GatewayError(.headersTooLarge, "headers larger than \(self.limits.maxHeaderBytes) bytes")
            }
            self.state = .head(scanned: max(buffer.readableBytes - 3, 1))
            return nil
        }
        let head = try buffer.withReadableBytes { bytes throws(GatewayError) in
            try self.parseHeadBytes(bytes, requestLineEnd: requestLineEnd, headEnd: headEnd)
        }
        let parsed = head.framing.head(
            method: head.method, uri: head.uri, minorVersion: head.minorVersion,
            rawHeaders: buffer.getSlice(at: buffer.readerIndex + head.headersStart, length: head.headersEnd - head.headersStart)!
        )
        buffer.moveReaderIndex(forwardBy: headEnd)
        if parsed.isChunked {
            self.state = .chunkSize
        } else if let length = parsed.contentLength, length > 0 {
            self.state = .fixedBody(remaining: length)
        } else {
            self.state = .endPending
        }
        return .head(parsed)
    }

    /// Searches `bytes` from `start` for the blank line that ends a head.
    /// - Returns: The end of the request line (index of its `\n`) if seen, and the head's end (one past its final
    ///   `\n`) if complete.
    private static func findHeadEnd(_ bytes: UnsafeRawBufferPointer, from start: Int)
        -> (requestLineEnd: Int?, end: (requestLineEnd: Int, headEnd: Int)?)
    {
        // The request line's end is needed for the limits: find it from the start (it is short, or refused).
        guard let requestLineEnd = Self.indexOfNewline(bytes, from: 0) else { return (nil, nil) }
        var index = max(requestLineEnd, start - 1)
        while index < bytes.count {
            guard let newline = Self.indexOfNewline(bytes, from: index) else { break }
            // A blank line follows this newline: `\n\n` or `\n\r\n`.
            if newline + 1 < bytes.count && bytes[newline + 1] == UInt8(ascii: "\n") {
                return (requestLineEnd, (requestLineEnd, newline + 2))
            }
            if newline + 2 < bytes.count && bytes[newline + 1] == UInt8(ascii: "\r") && bytes[newline + 2] == UInt8(ascii: "\n") {
                return (requestLineEnd, (requestLineEnd, newline + 3))
            }
            index = newline + 1
        }
        return (requestLineEnd, nil)
    }

    /// The length of the request target on a request line: the bytes between its first two spaces (0 if malformed,
    /// which parsing the complete head reports).
    private static func targetLength(_ line: UnsafeRawBufferPointer) -> Int {
        guard let first = line.firstIndex(of: UInt8(ascii: " ")) else { return 0 }
        let rest = line[(first + 1)...]
        return (rest.firstIndex(of: UInt8(ascii: " ")) ?? line.count) - first - 1
    }

    private static func indexOfNewline(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard start < bytes.count else { return nil }
        guard let found = memchr(bytes.baseAddress! + start, Int32(UInt8(ascii: "\n")), bytes.count - start) else {
            return nil
        }
        return bytes.baseAddress!.distance(to: UnsafeRawPointer(found))
    }

    /// A head that passed every check; ``Framing/head(method:uri:minorVersion:rawHeaders:)`` makes it.
    private struct ParsedHead {
        var framing: Framing
        var method: RequestMethod
        var uri: String
        var minorVersion: Int
        var headersStart: Int
        var headersEnd: Int
    }

    private func parseHeadBytes(_ bytes: UnsafeRawBufferPointer, requestLineEnd: Int, headEnd: Int)
        throws(GatewayError) -> ParsedHead
    {
        // Request line: method SP request-target SP HTTP-version.
        let line = UnsafeRawBufferPointer(rebasing: bytes[0..<Self.trimCR(bytes, requestLineEnd)])
        var index = 0
        while index < line.count && Self.isTokenByte(line[index]) { index += 1 }
        guard index > 0, index < line.count, line[index] == UInt8(ascii: " ") else {
            throw Self.malformed("malformed request line")
        }
        let method = RequestMethod(token: UnsafeRawBufferPointer(rebasing: line[0..<index]))
        let targetStart = index + 1
        index = targetStart
        while index < line.count && line[index] > 0x20 && line[index] < 0x7F { index += 1 }
        guard index > targetStart, index < line.count, line[index] == UInt8(ascii: " ") else {
            throw Self.malformed("malformed request line")
        }
        guard index - targetStart <= self.limits.maxURIBytes else {
            throw GatewayError(.uriTooLong, "request target longer than \(self.limits.maxURIBytes) bytes")
        }
        let uri = String(decoding: UnsafeRawBufferPointer(rebasing: line[targetStart..<index]), as: UTF8.self)
        let minorVersion = try Self.parseVersion(UnsafeRawBufferPointer(rebasing: line[(index + 1)...]))

        // Header fields.
        let headersStart = requestLineEnd + 1
        let blankLineStart = bytes[headEnd - 2] == UInt8(ascii: "\r") ? headEnd - 2 : headEnd - 1
        guard blankLineStart - headersStart <= self.limits.maxHeaderBytes else {
            throw GatewayError(.headersTooLarge, "headers larger than \(self.limits.maxHeaderBytes) bytes")
        }
        var framing = Framing()
        var fields = 0
        var lineStart = headersStart
        while lineStart < blankLineStart {
            let lineEnd = Self.indexOfNewline(bytes, from: lineStart)!
            fields += 1
            guard fields <= self.limits.maxHeaderFields else {
                throw GatewayError(.headersTooLarge, "more than \(self.limits.maxHeaderFields) header fields")
            }
            let field = try Self.parseField(UnsafeRawBufferPointer(rebasing: bytes[lineStart..<Self.trimCR(bytes, lineEnd)]))
            try framing.add(name: field.name, value: field.value,
                            valueOffset: field.value.baseAddress.map { bytes.baseAddress!.distance(to: $0) - headersStart } ?? 0)
            lineStart = lineEnd + 1
        }
        try framing.validate(minorVersion: minorVersion)
        return ParsedHead(framing: framing, method: method, uri: uri, minorVersion: minorVersion,
                          headersStart: headersStart, headersEnd: blankLineStart)
    }

    private static let versionPrefix: StaticString = "HTTP/"

    /// `HTTP/1.x` → x; a major version other than 1 is a 505.
    private static func parseVersion(_ text: UnsafeRawBufferPointer) throws(GatewayError) -> Int {
        guard text.count == 8, memcmp(text.baseAddress!, Self.versionPrefix.utf8Start, 5) == 0,
              text[6] == UInt8(ascii: "."), Self.isDigit(text[5]), Self.isDigit(text[7])
        else {
            throw Self.malformed("malformed HTTP version")
        }
        guard text[5] == UInt8(ascii: "1") else {
            throw GatewayError(.init(505, "HTTP Version Not Supported"), "only HTTP/1.0 and HTTP/1.1 are supported")
        }
        return min(Int(text[7] - UInt8(ascii: "0")), 1)
    }

    /// Splits and checks a field line (`name: value`); the value is trimmed of spaces and tabs.
    private static func parseField(_ line: UnsafeRawBufferPointer)
        throws(GatewayError) -> (name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)
    {
        guard let first = line.first, first != UInt8(ascii: " "), first != UInt8(ascii: "\t") else {
            throw Self.malformed(line.isEmpty ? "malformed header field" : "obsolete line folding in a header field")
        }
        var colon = 0
        while colon < line.count && Self.isTokenByte(line[colon]) { colon += 1 }
        guard colon > 0, colon < line.count, line[colon] == UInt8(ascii: ":") else {
            throw Self.malformed("malformed header field name")
        }
        var start = colon + 1
        var end = line.count
        while start < end && (line[start] == UInt8(ascii: " ") || line[start] == UInt8(ascii: "\t")) { start += 1 }
        while end > start && (line[end - 1] == UInt8(ascii: " ") || line[end - 1] == UInt8(ascii: "\t")) { end -= 1 }
        for index in start..<end {
            let byte = line[index]
            // field-value: visible ASCII, SP, HTAB and obs-text; no other control bytes (NUL, a bare CR, DEL, ...).
            guard byte >= 0x20 && byte != 0x7F || byte == UInt8(ascii: "\t") else {
                throw Self.malformed("control character in a header field value")
            }
        }
        return (UnsafeRawBufferPointer(rebasing: line[0..<colon]), UnsafeRawBufferPointer(rebasing: line[start..<end]))
    }

    /// The header fields that decide framing and the connection's fate.
    private struct Framing {
        var contentLength: Int?
        var transferEncodings = 0
        var chunked = false
        var connectionClose = false
        var connectionKeepAlive = false
        var connectionUpgrade = false
        var upgrade = false
        var hosts = 0
        var expectation: String?
        var known = RequestHead.KnownFieldIndex()

        /// Takes one field line's name and value; `valueOffset` is where the value starts in the header section.
        mutating func add(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, valueOffset: Int)
            throws(GatewayError)
        {
            switch name.count {
            case 6 where RequestHead.equalsIgnoringCase(name, lowercase: "accept"):
                self.known.note(.accept, offset: valueOffset, length: value.count)
            case 6 where RequestHead.equalsIgnoringCase(name, lowercase: "origin"):
                self.known.note(.origin, offset: valueOffset, length: value.count)
            case 12 where RequestHead.equalsIgnoringCase(name, lowercase: "content-type"):
                self.known.note(.contentType, offset: valueOffset, length: value.count)
            case 13 where RequestHead.equalsIgnoringCase(name, lowercase: "x-comet-event"):
                self.known.note(.cometEvent, offset: valueOffset, length: value.count)
            case 13 where RequestHead.equalsIgnoringCase(name, lowercase: "authorization"):
                self.known.note(.authorization, offset: valueOffset, length: value.count)
            case 13 where RequestHead.equalsIgnoringCase(name, lowercase: "last-event-id"):
                self.known.note(.lastEventID, offset: valueOffset, length: value.count)
            case 4 where RequestHead.equalsIgnoringCase(name, lowercase: "host"):
                self.hosts += 1
            case 6 where RequestHead.equalsIgnoringCase(name, lowercase: "expect"):
                self.expectation = String(decoding: value, as: UTF8.self)
            case 7 where RequestHead.equalsIgnoringCase(name, lowercase: "upgrade"):
                self.upgrade = true
            case 10 where RequestHead.equalsIgnoringCase(name, lowercase: "connection"):
                try HTTPRequestParser.forEachListElement(value) { token throws(GatewayError) in
                    if RequestHead.equalsIgnoringCase(token, lowercase: "close") { self.connectionClose = true }
                    if RequestHead.equalsIgnoringCase(token, lowercase: "keep-alive") { self.connectionKeepAlive = true }
                    if RequestHead.equalsIgnoringCase(token, lowercase: "upgrade") { self.connectionUpgrade = true }
                }
            case 14 where RequestHead.equalsIgnoringCase(name, lowercase: "content-length"):
                if value.isEmpty { throw HTTPRequestParser.malformed("empty Content-Length") }
                try HTTPRequestParser.forEachListElement(value) { element throws(GatewayError) in
                    let length = try HTTPRequestParser.decimal(element)
                    // Repeated lengths are allowed only if they agree (RFC 9110 §8.6).
                    if let existing = self.contentLength, existing != length {
                        throw HTTPRequestParser.malformed("conflicting Content-Length values")
                    }
                    self.contentLength = length
                }
                if self.contentLength == nil { throw HTTPRequestParser.malformed("malformed Content-Length") }
            case 17 where RequestHead.equalsIgnoringCase(name, lowercase: "transfer-encoding"):
                if value.isEmpty { throw HTTPRequestParser.malformed("empty Transfer-Encoding") }
                try HTTPRequestParser.forEachListElement(value) { coding throws(GatewayError) in
                    self.transferEncodings += 1
                    guard RequestHead.equalsIgnoringCase(coding, lowercase: "chunked") else {
                        throw GatewayError(.init(501, "Not Implemented"), "unsupported transfer coding (only chunked)")
                    }
                    guard !self.chunked else { throw HTTPRequestParser.malformed("chunked applied twice") }
                    self.chunked = true
                }
                if self.transferEncodings == 0 { throw HTTPRequestParser.malformed("empty Transfer-Encoding") }
            default:
                break
            }
        }

        /// Checks what the fields say together: framing, version and `Host`.
        func validate(minorVersion: Int) throws(GatewayError) {
            if self.chunked && self.contentLength != nil {
                throw HTTPRequestParser.malformed("both Transfer-Encoding and Content-Length")
            }
            if self.chunked && minorVersion == 0 {
                throw HTTPRequestParser.malformed("Transfer-Encoding in an HTTP/1.0 request")
            }
            if self.hosts > 1 { throw HTTPRequestParser.malformed("more than one Host header") }
            if self.hosts == 0 && minorVersion >= 1 { throw HTTPRequestParser.malformed("missing Host header") }
        }

        /// The head of a request whose fields passed ``validate(minorVersion:)``.
        func head(method: RequestMethod, uri: String, minorVersion: Int, rawHeaders: ByteBuffer) -> RequestHead {
            RequestHead(
                method: method,
                uri: uri,
                minorVersion: minorVersion,
                keepAlive: minorVersion >= 1 ? !self.connectionClose : self.connectionKeepAlive && !self.connectionClose,
                contentLength: self.chunked ? nil : self.contentLength,
                isChunked: self.chunked,
                expectation: self.expectation,
                isUpgrade: self.connectionUpgrade && self.upgrade,
                rawHeaders: rawHeaders,
                knownFields: self.known
            )
        }
    }

    // MARK: - Lexical helpers

    /// Calls `body` with each non-empty, trimmed element of a comma-separated list.
    static func forEachListElement(_ value: UnsafeRawBufferPointer,
                                   _ body: (UnsafeRawBufferPointer) throws(GatewayError) -> Void) throws(GatewayError) {
        var start = 0
        while start <= value.count {
            var end = start
            while end < value.count && value[end] != UInt8(ascii: ",") { end += 1 }
            var first = start
            var last = end
            while first < last && (value[first] == UInt8(ascii: " ") || value[first] == UInt8(ascii: "\t")) { first += 1 }
            while last > first && (value[last - 1] == UInt8(ascii: " ") || value[last - 1] == UInt8(ascii: "\t")) { last -= 1 }
            if first < last { try body(UnsafeRawBufferPointer(rebasing: value[first..<last])) }
            start = end + 1
        }
    }

    /// A non-negative decimal of at most 15 digits (a larger body is refused long before).
    static func decimal(_ text: UnsafeRawBufferPointer) throws(GatewayError) -> Int {
        guard !text.isEmpty, text.allSatisfy(Self.isDigit) else { throw Self.malformed("malformed Content-Length") }
        guard text.count <= 15 else { throw GatewayError(.payloadTooLarge, "Content-Length too large") }
        return text.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
    }

    /// `chunk-size [ chunk-ext ]`: hex digits, then optionally `;` extensions (ignored).
    private static func chunkSize(_ line: ByteBuffer) throws(GatewayError) -> Int {
        try line.withReadableBytes { bytes throws(GatewayError) -> Int in
            var size = 0
            var index = 0
            while index < bytes.count, let digit = Self.hexValue(bytes[index]) {
                guard index < 15 else { throw GatewayError(.payloadTooLarge, "chunk too large") }
                size = size << 4 | Int(digit)
                index += 1
            }
            guard index > 0 else { throw Self.malformed("malformed chunk size") }
            while index < bytes.count && (bytes[index] == UInt8(ascii: " ") || bytes[index] == UInt8(ascii: "\t")) { index += 1 }
            guard index == bytes.count || bytes[index] == UInt8(ascii: ";") else { throw Self.malformed("malformed chunk size") }
            for byte in bytes[index...] where byte < 0x20 && byte != UInt8(ascii: "\t") || byte == 0x7F {
                throw Self.malformed("control character in a chunk extension")
            }
            return size
        }
    }

    /// Takes one line (without its line ending) off the front of `buffer`; `nil` if no full line is there yet.
    private static func takeLine(_ buffer: inout ByteBuffer, limit: Int, tooLong: GatewayError)
        throws(GatewayError) -> ByteBuffer?
    {
        let newline = buffer.withUnsafeReadableBytes { bytes in Self.indexOfNewline(bytes, from: 0) }
        guard let newline else {
            if buffer.readableBytes > limit { throw tooLong }
            return nil
        }
        guard newline <= limit else { throw tooLong }
        var length = newline
        if length > 0 && buffer.getInteger(at: buffer.readerIndex + length - 1, as: UInt8.self) == UInt8(ascii: "\r") {
            length -= 1
        }
        let line = buffer.getSlice(at: buffer.readerIndex, length: length)!
        buffer.moveReaderIndex(forwardBy: newline + 1)
        return line
    }

    private static func trimCR(_ bytes: UnsafeRawBufferPointer, _ newline: Int) -> Int {
        newline > 0 && bytes[newline - 1] == UInt8(ascii: "\r") ? newline - 1 : newline
    }

    /// The value of a hexadecimal digit.
    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    static func isDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") < 10 }

    /// Whether `byte` is a `tchar` (RFC 9110 §5.6.2): a digit, a letter or one of ``!#$%&'*+-.^_`|~``.
    ///
    /// Two 64-bit masks (bit n set when byte n, or 64 + n, is a tchar) in registers: no table in a global, whose
    /// lazy initialization check would run for every byte of every method and header name.
    @inline(__always)
    static func isTokenByte(_ byte: UInt8) -> Bool {
        let low: UInt64 = 0x03FF_6CFA_0000_0000  // 0x00-0x3F: ! # $ % & ' * + - . 0-9
        let high: UInt64 = 0x57FF_FFFF_C7FF_FFFE  // 0x40-0x7F: A-Z ^ _ ` a-z | ~
        if byte < 64 { return low & (1 << UInt64(byte)) != 0 }
        if byte < 128 { return high & (1 << UInt64(byte &- 64)) != 0 }
        return false
    }

    static func malformed(_ reason: String) -> GatewayError {
        GatewayError(.badRequest, reason)
    }
}

extension ByteBuffer {
    /// `withUnsafeReadableBytes` for a body with a typed error (`rethrows` would widen it to `any Error`).
    fileprivate func withReadableBytes<T>(_ body: (UnsafeRawBufferPointer) throws(GatewayError) -> T) throws(GatewayError) -> T {
        let result = self.withUnsafeReadableBytes { bytes in
            Result { () throws(GatewayError) -> T in try body(bytes) }
        }
        return try result.get()
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
