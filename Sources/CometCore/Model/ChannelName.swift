/// A validated channel name.
///
/// A channel name is 1 to `maxLength` (default 128) characters from `A-Z a-z 0-9 _ - . : @ ~`. The only way to
/// make one from untrusted input is ``init(validating:maxLength:)``, so every `ChannelName` in the gateway is safe
/// to embed in JSON, SSE, URLs and Redis keys without further escaping.
public struct ChannelName: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The name as text.
    public let rawValue: String
    /// A hash of the name's bytes (the standard library's seeded hash), computed once: dictionaries keyed by channel
    /// (history, the hub's routes, each loop's subscriber lists) hash this word instead of the text on every lookup.
    private let bytesHash: Int

    /// The default maximum length of a channel name.
    public static let defaultMaxLength = 128

    /// Validates a channel name.
    /// - Parameters:
    ///   - text: The candidate name (already percent-decoded).
    ///   - maxLength: The longest name accepted.
    /// - Throws: ``GatewayError`` with status 400 when the name is empty, too long or has a character outside the set.
    public init<S: StringProtocol>(validating text: S, maxLength: Int = ChannelName.defaultMaxLength) throws {
        try self.init(validating: String(text), maxLength: maxLength)
    }

    /// Validates a channel name (the non-generic path: scanning contiguous UTF-8).
    public init(validating text: String, maxLength: Int = ChannelName.defaultMaxLength) throws {
        var text = text
        try text.withUTF8 { bytes in
            guard !bytes.isEmpty else { throw GatewayError.badRequest("empty channel name") }
            guard bytes.count <= maxLength else {
                throw GatewayError.badRequest("channel name longer than \(maxLength) characters")
            }
            for byte in bytes where !ChannelName.isAllowed(byte) {
                throw GatewayError.badRequest("channel name has a character outside A-Z a-z 0-9 _ - . : @ ~")
            }
        }
        self.rawValue = text
        // Hasher is seeded per process, so names chosen to collide (hash flooding) cannot be precomputed.
        self.bytesHash = text.withUTF8 { bytes in
            var hasher = Hasher()
            hasher.combine(bytes: UnsafeRawBufferPointer(bytes))
            return hasher.finalize()
        }
    }

    public static func == (lhs: ChannelName, rhs: ChannelName) -> Bool {
        lhs.bytesHash == rhs.bytesHash && lhs.rawValue == rhs.rawValue
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(self.bytesHash)
    }

    @inline(__always)
    static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: ":"), UInt8(ascii: "@"),
            UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    public var description: String { self.rawValue }

    public static func < (lhs: ChannelName, rhs: ChannelName) -> Bool { lhs.rawValue < rhs.rawValue }
}
