import NIOCore

/// Reading a request head's bytes: finding its end, the request line, the version and each header field (the
/// framing fields, `Connection`, `Upgrade`, `Expect` and the fields routes look up), every byte checked.
extension HTTPRequestParser {
    /// Searches `bytes` from `start` for the blank line that ends a head.
    /// - Returns: The end of the request line (index of its `\n`) if seen, and the head's end (one past its final
    ///   `\n`) if complete.
    static func findHeadEnd(_ bytes: UnsafeRawBufferPointer, from start: Int)
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
    static func targetLength(_ line: UnsafeRawBufferPointer) -> Int {
        guard let first = line.firstIndex(of: UInt8(ascii: " ")) else { return 0 }
        let rest = line[(first + 1)...]
        return (rest.firstIndex(of: UInt8(ascii: " ")) ?? line.count) - first - 1
    }

    static func indexOfNewline(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard start < bytes.count else { return nil }
        guard let found = memchr(bytes.baseAddress! + start, Int32(UInt8(ascii: "\n")), bytes.count - start) else {
            return nil
        }
        return bytes.baseAddress!.distance(to: UnsafeRawPointer(found))
    }

    /// A head that passed every check; ``Framing/head(method:uri:minorVersion:rawHeaders:)`` makes it.
    struct ParsedHead {
        var framing: Framing
        var method: RequestMethod
        var uri: String
        var minorVersion: Int
        var headersStart: Int
        var headersEnd: Int
    }

    func parseHeadBytes(_ bytes: UnsafeRawBufferPointer, requestLineEnd: Int, headEnd: Int)
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
    static func parseVersion(_ text: UnsafeRawBufferPointer) throws(GatewayError) -> Int {
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
    static func parseField(_ line: UnsafeRawBufferPointer)
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
    struct Framing {
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
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
