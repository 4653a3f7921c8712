import NIOCore

/// A value of the Redis serialization protocol (RESP2), as Redis answers commands and pushes pub/sub messages.
public enum RESPValue: Sendable, Equatable {
    /// `+OK`
    case simpleString(String)
    /// `-ERR …`: the command failed (the connection stays usable).
    case error(String)
    /// `:42`
    case integer(Int64)
    /// `$N` and N bytes, or `$-1` (nil).
    case bulkString(ByteBuffer?)
    /// `*N` and N values, or `*-1` (nil).
    case array([RESPValue]?)

    /// The bytes of a bulk string or the text of a simple string.
    public var bytes: ByteBuffer? {
        switch self {
        case .bulkString(let buffer): buffer
        case .simpleString(let text): ByteBuffer(string: text)
        default: nil
        }
    }

    /// A bulk or simple string as text (nil when not a string or not UTF-8).
    public var string: String? {
        switch self {
        case .simpleString(let text): text
        case .bulkString(let buffer?): buffer.getString(at: buffer.readerIndex, length: buffer.readableBytes)
        default: nil
        }
    }

    /// An integer, or a string holding a decimal integer.
    public var int: Int64? {
        switch self {
        case .integer(let value): value
        default: self.string.flatMap { Int64($0) }
        }
    }

    /// The elements of an array (nil for anything else, or a nil array).
    public var elements: [RESPValue]? {
        if case .array(let values?) = self { return values }
        return nil
    }
}

/// An argument of a command: text, or bytes sent as they are.
public enum RESPArgument: Sendable, ExpressibleByStringLiteral {
    case string(String)
    case bytes(ByteBuffer)

    public init(stringLiteral value: String) {
        self = .string(value)
    }

    public init(_ value: some BinaryInteger) {
        self = .string(String(value))
    }
}

/// Encodes commands as RESP arrays of bulk strings (what Redis reads).
public enum RESPEncoder {
    /// Appends `command` (its name first) to `buffer`.
    public static func write(_ command: [RESPArgument], into buffer: inout ByteBuffer) {
        buffer.writeStaticString("*")
        buffer.writeString(String(command.count))
        buffer.writeStaticString("\r\n")
        for argument in command {
            switch argument {
            case .string(let text):
                buffer.writeStaticString("$")
                buffer.writeString(String(text.utf8.count))
                buffer.writeStaticString("\r\n")
                buffer.writeString(text)
            case .bytes(let bytes):
                buffer.writeStaticString("$")
                buffer.writeString(String(bytes.readableBytes))
                buffer.writeStaticString("\r\n")
                buffer.writeImmutableBuffer(bytes)
            }
            buffer.writeStaticString("\r\n")
        }
    }

    /// Appends `value` as RESP (for payloads the gateway frames itself, such as its pub/sub messages).
    public static func write(_ value: RESPValue, into buffer: inout ByteBuffer) {
        switch value {
        case .simpleString(let text):
            buffer.writeString("+\(text)\r\n")
        case .error(let text):
            buffer.writeString("-\(text)\r\n")
        case .integer(let number):
            buffer.writeString(":\(number)\r\n")
        case .bulkString(nil):
            buffer.writeStaticString("$-1\r\n")
        case .bulkString(let bytes?):
            buffer.writeString("$\(bytes.readableBytes)\r\n")
            buffer.writeImmutableBuffer(bytes)
            buffer.writeStaticString("\r\n")
        case .array(nil):
            buffer.writeStaticString("*-1\r\n")
        case .array(let values?):
            buffer.writeString("*\(values.count)\r\n")
            for element in values { Self.write(element, into: &buffer) }
        }
    }
}
