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
    let limits: Limits

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

    /// The end of the line whose `\n` is at `newline`, without the `\r` before it if there is one.
    static func trimCR(_ bytes: UnsafeRawBufferPointer, _ newline: Int) -> Int {
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
