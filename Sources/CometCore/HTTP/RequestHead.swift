import NIOCore

/// A request method. The methods the gateway routes are cases of their own; any other valid token is `.other`.
public enum RequestMethod: Hashable, Sendable, CustomStringConvertible {
    case get, head, post, put, delete, options
    case other(String)

    init(token: UnsafeRawBufferPointer) {
        switch token.count {
        case 3 where Self.equal(token, "GET"): self = .get
        case 3 where Self.equal(token, "PUT"): self = .put
        case 4 where Self.equal(token, "POST"): self = .post
        case 4 where Self.equal(token, "HEAD"): self = .head
        case 6 where Self.equal(token, "DELETE"): self = .delete
        case 7 where Self.equal(token, "OPTIONS"): self = .options
        default: self = .other(String(decoding: token, as: UTF8.self))
        }
    }

    /// Methods are case-sensitive (RFC 9110 §9.1): `get` is not `GET`.
    private static func equal(_ token: UnsafeRawBufferPointer, _ name: StaticString) -> Bool {
        memcmp(token.baseAddress!, name.utf8Start, name.utf8CodeUnitCount) == 0
    }

    public var description: String {
        switch self {
        case .get: "GET"
        case .head: "HEAD"
        case .post: "POST"
        case .put: "PUT"
        case .delete: "DELETE"
        case .options: "OPTIONS"
        case .other(let token): token
        }
    }
}

/// A parsed HTTP/1.x request head. Immutable; a class, so that handing it from the parser through the connection's
/// states to the routes costs one reference count, not a copy of every field.
///
/// The header section is kept as the bytes that arrived (a slice of the read buffer, not a copy); ``first(name:)`` and
/// ``forEachHeader(_:)`` read it on demand. The fields the connection needs for framing and routing are parsed once.
public final class RequestHead: Sendable {
    /// The method.
    public let method: RequestMethod
    /// The request target exactly as sent (visible ASCII only).
    public let uri: String
    /// The minor version of HTTP/1.x (`0` or `1`; a later 1.x is treated as `1`).
    public let minorVersion: Int
    /// Whether the connection stays open after the response: HTTP/1.1 unless `Connection: close`, HTTP/1.0 only
    /// with `Connection: keep-alive`.
    public let keepAlive: Bool
    /// The body length from `Content-Length`; `nil` when the body is chunked or there is none.
    public let contentLength: Int?
    /// Whether the body is sent with `Transfer-Encoding: chunked`.
    public let isChunked: Bool
    /// The `Expect` header's value, if any (`100-continue` is the only expectation HTTP defines).
    public let expectation: String?
    /// Whether the client asked for a protocol switch (`Connection: upgrade` and an `Upgrade` header).
    public let isUpgrade: Bool
    /// The bytes of the header section: every field line including its line ending, without the final blank line.
    public let rawHeaders: ByteBuffer
    /// Where the parser found the fields of ``KnownField`` (the first field of each name) in ``rawHeaders``.
    let knownFields: KnownFieldIndex

    init(method: RequestMethod, uri: String, minorVersion: Int, keepAlive: Bool, contentLength: Int?, isChunked: Bool,
         expectation: String?, isUpgrade: Bool, rawHeaders: ByteBuffer, knownFields: KnownFieldIndex) {
        self.method = method
        self.uri = uri
        self.minorVersion = minorVersion
        self.keepAlive = keepAlive
        self.contentLength = contentLength
        self.isChunked = isChunked
        self.expectation = expectation
        self.isUpgrade = isUpgrade
        self.rawHeaders = rawHeaders
        self.knownFields = knownFields
    }

    /// Header fields the gateway reads on most requests: the parser notes where each is while it checks the head, so
    /// reading one (``first(_:)``) does not scan the header section again.
    public enum KnownField: Int, Sendable, CaseIterable {
        /// `Accept`
        case accept
        /// `Authorization`
        case authorization
        /// `Content-Type`
        case contentType
        /// `X-Comet-Event`
        case cometEvent
        /// `Last-Event-ID`
        case lastEventID
        /// `Origin`
        case origin

        /// The field name, in lowercase.
        public var name: String {
            switch self {
            case .accept: "accept"
            case .authorization: "authorization"
            case .contentType: "content-type"
            case .cometEvent: "x-comet-event"
            case .lastEventID: "last-event-id"
            case .origin: "origin"
            }
        }
    }

    /// The value ranges of the known fields in the header section: per field, the offset in the high 32 bits and the
    /// length plus one in the low 32 bits (0: absent).
    struct KnownFieldIndex: Sendable {
        private var ranges: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)

        /// Records a field's value unless a field of that name came earlier.
        mutating func note(_ field: KnownField, offset: Int, length: Int) {
            guard self[field] == 0 else { return }
            self[field] = UInt64(truncatingIfNeeded: offset) << 32 | UInt64(truncatingIfNeeded: length + 1)
        }

        func range(_ field: KnownField) -> (offset: Int, length: Int)? {
            let packed = self[field]
            guard packed != 0 else { return nil }
            return (Int(packed >> 32), Int(packed & 0xFFFF_FFFF) - 1)
        }

        private subscript(field: KnownField) -> UInt64 {
            get {
                switch field {
                case .accept: self.ranges.0
                case .authorization: self.ranges.1
                case .contentType: self.ranges.2
                case .cometEvent: self.ranges.3
                case .lastEventID: self.ranges.4
                case .origin: self.ranges.5
                }
            }
            set {
                switch field {
                case .accept: self.ranges.0 = newValue
                case .authorization: self.ranges.1 = newValue
                case .contentType: self.ranges.2 = newValue
                case .cometEvent: self.ranges.3 = newValue
                case .lastEventID: self.ranges.4 = newValue
                case .origin: self.ranges.5 = newValue
                }
            }
        }
    }

    /// The value of the first `field` header (without surrounding whitespace), found without a scan.
    public func first(_ field: KnownField) -> String? {
        guard let range = self.knownFields.range(field) else { return nil }
        return self.rawHeaders.getString(at: self.rawHeaders.readerIndex + range.offset, length: range.length)
    }

    /// The value of the first `field` header, like ``first(_:)``; a value equal byte for byte to one of `common` is
    /// returned as that string itself, so the most frequent values cost no allocation.
    public func first(_ field: KnownField, common: [String]) -> String? {
        guard let range = self.knownFields.range(field) else { return nil }
        let start = self.rawHeaders.readerIndex + range.offset
        let match = self.rawHeaders.withUnsafeReadableBytes { bytes -> String? in
            let value = UnsafeRawBufferPointer(rebasing: bytes[range.offset..<(range.offset + range.length)])
            for candidate in common where candidate.utf8.count == value.count {
                guard !value.isEmpty else { return candidate }
                let equal = candidate.utf8.withContiguousStorageIfAvailable { candidateBytes in
                    memcmp(candidateBytes.baseAddress!, value.baseAddress!, value.count) == 0
                }
                if equal ?? value.elementsEqual(candidate.utf8) { return candidate }
            }
            return nil
        }
        return match ?? self.rawHeaders.getString(at: start, length: range.length)
    }

    /// Whether the request has a body to read (a non-zero `Content-Length`, or chunked).
    public var hasBody: Bool { self.isChunked || (self.contentLength ?? 0) > 0 }

    /// The value of the first header field named `name` (ASCII case-insensitive), without surrounding whitespace.
    public func first(name: String) -> String? {
        var name = name
        return name.withUTF8 { expected in
            let expected = UnsafeRawBufferPointer(expected)
            var result: String?
            self.forEachHeader { fieldName, value in
                if fieldName.count == expected.count && Self.equalsIgnoringCase(fieldName, expected) {
                    result = String(decoding: value, as: UTF8.self)
                    return false
                }
                return true
            }
            return result
        }
    }

    /// Calls `body` with each header field's name and value (trimmed) in order, while it returns `true`.
    /// The buffers are valid only during the call.
    public func forEachHeader(_ body: (_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> Bool) {
        self.rawHeaders.withUnsafeReadableBytes { bytes in
            var lineStart = 0
            while lineStart < bytes.count {
                var lineEnd = lineStart
                while lineEnd < bytes.count && bytes[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
                var end = lineEnd
                if end > lineStart && bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                // The parser accepted this line, so it has a colon with a non-empty name before it.
                var colon = lineStart
                while bytes[colon] != UInt8(ascii: ":") { colon += 1 }
                var valueStart = colon + 1
                while valueStart < end && (bytes[valueStart] == UInt8(ascii: " ") || bytes[valueStart] == UInt8(ascii: "\t")) {
                    valueStart += 1
                }
                var valueEnd = end
                while valueEnd > valueStart && (bytes[valueEnd - 1] == UInt8(ascii: " ") || bytes[valueEnd - 1] == UInt8(ascii: "\t")) {
                    valueEnd -= 1
                }
                let name = UnsafeRawBufferPointer(rebasing: bytes[lineStart..<colon])
                let value = UnsafeRawBufferPointer(rebasing: bytes[valueStart..<valueEnd])
                if !body(name, value) { return }
                lineStart = lineEnd + 1
            }
        }
    }

    /// Every header field in order, as strings.
    public var headers: [(name: String, value: String)] {
        var fields: [(name: String, value: String)] = []
        self.forEachHeader { name, value in
            fields.append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
            return true
        }
        return fields
    }

    @inline(__always)
    static func lowercased(_ byte: UInt8) -> UInt8 {
        byte &- UInt8(ascii: "A") < 26 ? byte | 0x20 : byte
    }

    static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ name: String) -> Bool {
        var name = name
        return name.withUTF8 { Self.equalsIgnoringCase(bytes, UnsafeRawBufferPointer($0)) }
    }

    /// Compares with a name given in lowercase (the header names the parser looks for).
    static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, lowercase name: StaticString) -> Bool {
        Self.equalsIgnoringCase(bytes, UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
    }

    static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ expected: UnsafeRawBufferPointer) -> Bool {
        guard expected.count == bytes.count else { return false }
        for index in 0..<expected.count where Self.lowercased(bytes[index]) != Self.lowercased(expected[index]) {
            return false
        }
        return true
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
