import NIOCore

/// Reads a WebSocket client's frames (RFC 6455, section 5) from the connection's bytes, incrementally and within
/// limits, and yields whole messages and control frames. Sans-I/O: the caller feeds bytes and acts on events.
///
/// Everything a client may get wrong is a ``ProtocolError`` with the close code to answer with: unmasked frames,
/// reserved bits or opcodes, fragmented or oversized control frames, a continuation with nothing to continue, a data
/// frame in the middle of a fragmented message, frames or messages past the limits, and text that is not UTF-8.
public struct WebSocketFrameParser: Sendable {
    /// Limits on what a client may send.
    public struct Limits: Sendable, Hashable {
        /// The largest frame payload.
        public var maxFrameBytes: Int
        /// The largest message, all its fragments together.
        public var maxMessageBytes: Int
        /// The most frames one message may be split into.
        public var maxFragments: Int

        /// Creates limits.
        public init(maxFrameBytes: Int, maxMessageBytes: Int, maxFragments: Int) {
            self.maxFrameBytes = maxFrameBytes
            self.maxMessageBytes = maxMessageBytes
            self.maxFragments = maxFragments
        }
    }

    /// What the client sent.
    public enum Event: Sendable, Equatable {
        /// A complete text message (valid UTF-8).
        case text(String)
        /// A complete binary message.
        case binary(ByteBuffer)
        /// A ping with its payload.
        case ping(ByteBuffer)
        /// A pong.
        case pong
        /// A close frame: its status code (nil: none) and reason.
        case close(code: UInt16?, reason: String)
    }

    /// A protocol violation: close the connection with ``closeCode`` and ``reason``.
    public struct ProtocolError: Error, Sendable, Equatable {
        /// The close code (1002 protocol error, 1007 invalid data, 1009 too big).
        public let closeCode: UInt16
        /// A short reason.
        public let reason: String

        public init(_ closeCode: UInt16, _ reason: String) {
            self.closeCode = closeCode
            self.reason = reason
        }
    }

    private let limits: Limits
    /// The message being assembled from fragments: its opcode (1 text, 2 binary), bytes and frame count.
    private var fragmented: (opcode: UInt8, bytes: ByteBuffer, frames: Int)?

    /// Creates a parser.
    public init(limits: Limits) {
        self.limits = limits
    }

    /// Reads the next event from `buffer`, consuming the bytes of the frames it read; nil when more bytes are needed
    /// (an incomplete frame stays in `buffer`, which holds at most one frame's header and payload).
    /// - Throws: ``ProtocolError``; the connection must then be closed.
    public mutating func next(_ buffer: inout ByteBuffer) throws -> Event? {
        while true {
            guard let frame = try self.readFrame(&buffer) else { return nil }
            if let event = try self.handle(frame) {
                return event
            }
        }
    }

    private struct Frame {
        var fin: Bool
        var opcode: UInt8
        var payload: ByteBuffer
    }

    private func readFrame(_ buffer: inout ByteBuffer) throws -> Frame? {
        let start = buffer.readerIndex
        guard buffer.readableBytes >= 2,
              let first = buffer.getInteger(at: start, as: UInt8.self),
              let second = buffer.getInteger(at: start + 1, as: UInt8.self)
        else { return nil }
        let fin = first & 0x80 != 0
        let opcode = first & 0x0F
        guard first & 0x70 == 0 else { throw ProtocolError(1002, "reserved bits set") }
        switch opcode {
        case 0x0, 0x1, 0x2, 0x8, 0x9, 0xA: break
        default: throw ProtocolError(1002, "unknown opcode")
        }
        guard second & 0x80 != 0 else { throw ProtocolError(1002, "client frames must be masked") }
        let isControl = opcode & 0x8 != 0
        var length = UInt64(second & 0x7F)
        var offset = 2
        if length == 126 {
            guard let value = buffer.getInteger(at: start + 2, as: UInt16.self) else { return nil }
            length = UInt64(value)
            offset = 4
        } else if length == 127 {
            guard let value = buffer.getInteger(at: start + 2, as: UInt64.self) else { return nil }
            guard value & (1 << 63) == 0 else { throw ProtocolError(1002, "invalid frame length") }
            length = value
            offset = 10
        }
        if isControl {
            guard fin else { throw ProtocolError(1002, "fragmented control frame") }
            guard length <= 125 else { throw ProtocolError(1002, "control frame too large") }
        }
        guard length <= UInt64(self.limits.maxFrameBytes) else { throw ProtocolError(1009, "frame too large") }
        let payloadLength = Int(length)
        guard buffer.readableBytes >= offset + 4 else { return nil }
        guard buffer.readableBytes - offset - 4 >= payloadLength else { return nil }  // no overflow: the left side is small
        let mask = buffer.getBytes(at: start + offset, length: 4)!
        var payload = ByteBuffer()
        payload.reserveCapacity(payloadLength)
        buffer.withUnsafeReadableBytes { bytes in
            let source = UnsafeRawBufferPointer(rebasing: bytes[(offset + 4)..<(offset + 4 + payloadLength)])
            payload.writeWithUnsafeMutableBytes(minimumWritableBytes: payloadLength) { out in
                for index in 0..<payloadLength {
                    out[index] = source[index] ^ mask[index & 3]
                }
                return payloadLength
            }
        }
        buffer.moveReaderIndex(forwardBy: offset + 4 + payloadLength)
        return Frame(fin: fin, opcode: opcode, payload: payload)
    }

    private mutating func handle(_ frame: Frame) throws -> Event? {
        switch frame.opcode {
        case 0x8:
            return try Self.close(frame.payload)
        case 0x9:
            return .ping(frame.payload)
        case 0xA:
            return .pong
        case 0x0:
            guard var message = self.fragmented else { throw ProtocolError(1002, "continuation without a message") }
            self.fragmented = nil  // avoid a copy while appending
            message.frames += 1
            guard message.frames <= self.limits.maxFragments else { throw ProtocolError(1009, "too many fragments") }
            guard message.bytes.readableBytes + frame.payload.readableBytes <= self.limits.maxMessageBytes else {
                throw ProtocolError(1009, "message too large")
            }
            var payload = frame.payload
            message.bytes.writeBuffer(&payload)
            guard frame.fin else {
                self.fragmented = message
                return nil
            }
            return try Self.message(opcode: message.opcode, message.bytes)
        default:  // 0x1, 0x2
            guard self.fragmented == nil else { throw ProtocolError(1002, "new message inside a fragmented one") }
            guard frame.payload.readableBytes <= self.limits.maxMessageBytes else {
                throw ProtocolError(1009, "message too large")
            }
            guard frame.fin else {
                self.fragmented = (frame.opcode, frame.payload, 1)
                return nil
            }
            return try Self.message(opcode: frame.opcode, frame.payload)
        }
    }

    private static func message(opcode: UInt8, _ bytes: ByteBuffer) throws -> Event {
        guard opcode == 0x1 else { return .binary(bytes) }
        guard let text = bytes.withUnsafeReadableBytes({ String(validating: $0, as: UTF8.self) }) else {
            throw ProtocolError(1007, "text is not UTF-8")
        }
        return .text(text)
    }

    private static func close(_ payload: ByteBuffer) throws -> Event {
        guard payload.readableBytes > 0 else { return .close(code: nil, reason: "") }
        guard payload.readableBytes >= 2, let code = payload.getInteger(at: payload.readerIndex, as: UInt16.self) else {
            throw ProtocolError(1002, "invalid close frame")
        }
        switch code {
        case 1000...1003, 1007...1011, 3000...4999: break
        default: throw ProtocolError(1002, "invalid close code")
        }
        let reasonBytes = payload.getSlice(at: payload.readerIndex + 2, length: payload.readableBytes - 2)!
        guard let reason = reasonBytes.withUnsafeReadableBytes({ String(validating: $0, as: UTF8.self) }) else {
            throw ProtocolError(1007, "close reason is not UTF-8")
        }
        return .close(code: code, reason: reason)
    }
}
