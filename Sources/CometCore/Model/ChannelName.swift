/// A validated channel name.
///
/// A channel name is 1 to `maxLength` (default 128) characters from `A-Z a-z 0-9 _ - . : @ ~`. The only way to
/// make one from untrusted input is ``init(validating:maxLength:)``, so every `ChannelName` in the gateway is safe
/// to embed in JSON, SSE, URLs and Redis keys without further escaping.
public struct ChannelName: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The name as text.
    public let rawValue: String

    /// The default maximum length of a channel name.
    public static let defaultMaxLength = 128

    /// Validates a channel name.
    /// - Parameters:
    ///   - text: The candidate name (already percent-decoded).
    ///   - maxLength: The longest name accepted.
    /// - Throws: ``GatewayError`` with status 400 when the name is empty, too long or has a character outside the set.
    public init<S: StringProtocol>(validating text: S, maxLength: Int = ChannelName.defaultMaxLength) throws {
        let utf8 = text.utf8
        guard !utf8.isEmpty else { throw GatewayError.badRequest("empty channel name") }
        guard utf8.count <= maxLength else {
            throw GatewayError.badRequest("channel name longer than \(maxLength) characters")
        }
        for byte in utf8 where !ChannelName.isAllowed(byte) {
            throw GatewayError.badRequest("channel name has a character outside A-Z a-z 0-9 _ - . : @ ~")
        }
        self.rawValue = String(text)
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
