import NIOCore

/// What is wrong with bytes that claim to be RESP: the connection they came on cannot be trusted any more.
public struct RESPProtocolError: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { "RESP protocol error: \(self.reason)" }
}

/// An incremental RESP2 parser with bounds: values are read from a buffer as their bytes arrive, and a value larger
/// than the limits (a huge length, a deep nesting, a long line) is an error before anything is allocated for it.
///
/// A value whose bytes are not all there yet leaves the buffer as it was (the parser reads it again, from its start,
/// when more arrived); a complete value is consumed.
public struct RESPParser: Sendable {
    /// Bounds on what one value may hold.
    public struct Limits: Sendable {
        /// The longest bulk string.
        public var maxBulkBytes: Int
        /// The most elements of one array.
        public var maxArrayCount: Int
        /// The deepest nesting of arrays.
        public var maxDepth: Int
        /// The longest simple string, error or integer line.
        public var maxLineBytes: Int

        public init(maxBulkBytes: Int = 64 << 20, maxArrayCount: Int = 1 << 20, maxDepth: Int = 8,
                    maxLineBytes: Int = 64 * 1024) {
            self.maxBulkBytes = maxBulkBytes
            self.maxArrayCount = maxArrayCount
            self.maxDepth = maxDepth
            self.maxLineBytes = maxLineBytes
        }
    }

    public let limits: Limits

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// The next complete value in `buffer` (consumed), or nil when more bytes are needed.
    public func next(_ buffer: inout ByteBuffer) throws(RESPProtocolError) -> RESPValue? {
        var cursor = buffer.readerIndex
        guard let value = try self.value(buffer, at: &cursor, depth: 0) else { return nil }
        buffer.moveReaderIndex(to: cursor)
        return value
    }

    private func value(_ buffer: ByteBuffer, at cursor: inout Int, depth: Int) throws(RESPProtocolError) -> RESPValue? {
        guard let type = buffer.getInteger(at: cursor, as: UInt8.self) else { return nil }
        guard let line = try self.line(buffer, at: cursor + 1) else { return nil }
        let text = line.text
        switch type {
        case UInt8(ascii: "+"):
            cursor = line.next
            return .simpleString(text)
        case UInt8(ascii: "-"):
            cursor = line.next
            return .error(text)
        case UInt8(ascii: ":"):
            guard let number = Int64(text) else { throw RESPProtocolError("integer expected, got \(text.prefix(20))") }
            cursor = line.next
            return .integer(number)
        case UInt8(ascii: "$"):
            guard let length = Int(text), length >= -1 else { throw RESPProtocolError("bad bulk length") }
            if length == -1 {
                cursor = line.next
                return .bulkString(nil)
            }
            guard length <= self.limits.maxBulkBytes else {
                throw RESPProtocolError("bulk string of \(length) bytes is over the limit")
            }
            guard buffer.writerIndex - line.next >= length + 2 else { return nil }
            guard buffer.getInteger(at: line.next + length, as: UInt16.self) == 0x0D0A else {
                throw RESPProtocolError("bulk string not followed by CRLF")
            }
            let bytes = buffer.getSlice(at: line.next, length: length)!
            cursor = line.next + length + 2
            return .bulkString(bytes)
        case UInt8(ascii: "*"):
            guard let count = Int(text), count >= -1 else { throw RESPProtocolError("bad array length") }
            if count == -1 {
                cursor = line.next
                return .array(nil)
            }
            guard count <= self.limits.maxArrayCount else { throw RESPProtocolError("array of \(count) elements is over the limit") }
            guard depth < self.limits.maxDepth else { throw RESPProtocolError("arrays nested too deep") }
            var position = line.next
            var elements: [RESPValue] = []
            // Never reserve from an untrusted count before the elements are there.
            for _ in 0..<count {
                guard let element = try self.value(buffer, at: &position, depth: depth + 1) else { return nil }
                elements.append(element)
            }
            cursor = position
            return .array(elements)
        default:
            throw RESPProtocolError("unknown type byte \(type)")
        }
    }

    /// The line starting at `start` (without CRLF) and where the next begins; nil when its CRLF is not there yet.
    private func line(_ buffer: ByteBuffer, at start: Int) throws(RESPProtocolError) -> (text: String, next: Int)? {
        let available = buffer.writerIndex - start
        guard available > 0 else { return nil }
        let scan = min(available, self.limits.maxLineBytes + 2)
        let found: Int? = buffer.withUnsafeReadableBytes { bytes in
            let base = start - buffer.readerIndex
            var index = base
            while index < base + scan {
                if bytes[index] == UInt8(ascii: "\r") {
                    return index + 1 < base + available ? (bytes[index + 1] == UInt8(ascii: "\n") ? index - base : -1) : nil
                }
                if bytes[index] == UInt8(ascii: "\n") { return -1 }
                index += 1
            }
            return nil
        }
        guard let length = found else {
            if available > self.limits.maxLineBytes + 1 { throw RESPProtocolError("line too long") }
            return nil
        }
        guard length >= 0 else { throw RESPProtocolError("bare CR or LF in a line") }
        let text = buffer.getString(at: start, length: length) ?? ""
        return (text, start + length + 2)
    }
}
