/// The path and query of an origin-form request target (`/path?query`), percent-decoded.
public struct RequestTarget: Sendable, Equatable {
    /// The percent-decoded path.
    public var path: String
    /// The query parameters in order, names and values percent-decoded (`+` is a space).
    public var query: [(name: String, value: String)]

    /// Parses a request target.
    /// - Throws: ``GatewayError`` (400) for a target that is not origin-form, a bad percent escape, or bytes that are
    ///   not valid UTF-8 once decoded.
    public init(parsing uri: String) throws {
        // Byte-level scanning: Character (grapheme) iteration is an order of magnitude slower on this hot path.
        let utf8 = uri.utf8
        guard utf8.first == UInt8(ascii: "/") else {
            throw GatewayError.badRequest("request target must be an absolute path")
        }
        let mark = utf8.firstIndex(of: UInt8(ascii: "?"))
        self.path = try RequestTarget.percentDecode(Substring(utf8[..<(mark ?? utf8.endIndex)]), plusIsSpace: false)
        var query: [(name: String, value: String)] = []
        if let mark {
            var start = utf8.index(after: mark)
            while start < utf8.endIndex {
                let end = utf8[start...].firstIndex(of: UInt8(ascii: "&")) ?? utf8.endIndex
                if start < end {
                    let pair = utf8[start..<end]
                    if let equals = pair.firstIndex(of: UInt8(ascii: "=")) {
                        query.append(
                            (
                                try RequestTarget.percentDecode(Substring(pair[..<equals]), plusIsSpace: true),
                                try RequestTarget.percentDecode(Substring(pair[utf8.index(after: equals)...]), plusIsSpace: true)
                            )
                        )
                    } else {
                        query.append((try RequestTarget.percentDecode(Substring(pair), plusIsSpace: true), ""))
                    }
                }
                start = end < utf8.endIndex ? utf8.index(after: end) : end
            }
        }
        self.query = query
    }

    /// The value of the first query parameter named `name`.
    public func queryValue(_ name: String) -> String? {
        self.query.first(where: { $0.name == name })?.value
    }

    public static func == (lhs: RequestTarget, rhs: RequestTarget) -> Bool {
        lhs.path == rhs.path && lhs.query.elementsEqual(rhs.query, by: { $0 == $1 })
    }

    /// Percent-decodes `text`.
    /// - Throws: ``GatewayError`` (400) for a malformed escape or a result that is not valid UTF-8.
    public static func percentDecode<S: StringProtocol>(_ text: S, plusIsSpace: Bool) throws -> String {
        let utf8 = text.utf8
        if !utf8.contains(where: { $0 == UInt8(ascii: "%") || (plusIsSpace && $0 == UInt8(ascii: "+")) }) {
            return String(text)
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count)
        var iterator = utf8.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                    throw GatewayError.badRequest("malformed percent-encoding")
                }
                bytes.append(high << 4 | low)
            case UInt8(ascii: "+") where plusIsSpace:
                bytes.append(UInt8(ascii: " "))
            default:
                bytes.append(byte)
            }
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else {
            throw GatewayError.badRequest("percent-encoded bytes are not valid UTF-8")
        }
        return decoded
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
