import NIOCore

/// The opaque resume cursor a subscriber passes back as `Last-Event-ID` or `?last_event_id=`.
///
/// A message's id is its channel sequence number: a decimal `UInt64` that increases monotonically per channel (it
/// is derived from the publish time in microseconds, so it also increases across restarts of a node as long as the
/// clock does not step back). A cursor holds one position per channel of a subscription, in the subscription's
/// canonical (sorted) channel order, joined by `.`: `1764000000123456` for one channel,
/// `1764000000123456.1764000000200000` for two. Position `n` means "every message of that channel with id ≤ n
/// has been seen".
public struct Cursor: Hashable, Sendable, CustomStringConvertible {
    /// One position per channel, in canonical channel order.
    public var positions: [UInt64]

    /// The longest cursor text accepted (16 channels of 20 digits and separators, with room to spare).
    public static let maxTextLength = 512

    /// Creates a cursor from positions.
    public init(positions: [UInt64]) {
        self.positions = positions
    }

    /// Parses cursor text.
    /// - Throws: ``GatewayError`` (400) when the text is not 1 to 64 dot-separated decimal numbers that fit `UInt64`.
    public init<S: StringProtocol>(parsing text: S) throws {
        let malformed = GatewayError.badRequest("malformed last_event_id")
        guard !text.isEmpty, text.utf8.count <= Cursor.maxTextLength else { throw malformed }
        var positions: [UInt64] = []
        var current: UInt64 = 0
        var digits = 0
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                let (times10, o1) = current.multipliedReportingOverflow(by: 10)
                let (sum, o2) = times10.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
                guard !o1, !o2 else { throw malformed }
                current = sum
                digits += 1
            case UInt8(ascii: "."):
                guard digits > 0 else { throw malformed }
                positions.append(current)
                current = 0
                digits = 0
            default:
                throw malformed
            }
        }
        guard digits > 0, positions.count < 64 else { throw malformed }
        positions.append(current)
        self.positions = positions
    }

    /// Writes the cursor text into `buffer` (no intermediate String).
    public func write(into buffer: inout ByteBuffer) {
        Self.write(self.positions, into: &buffer)
    }

    /// Writes the cursor text of `positions` into `buffer`.
    public static func write(_ positions: [UInt64], into buffer: inout ByteBuffer) {
        for (index, position) in positions.enumerated() {
            if index > 0 { buffer.writeInteger(UInt8(ascii: ".")) }
            JSONEncoding.writeDecimal(position, into: &buffer)
        }
    }

    public var description: String {
        var text = ""
        text.reserveCapacity(self.positions.count * 17)
        for (index, position) in self.positions.enumerated() {
            if index > 0 { text.append(".") }
            text.append(String(position))
        }
        return text
    }
}
