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
        // Byte-level scanning of the contiguous UTF-8: Character (grapheme) iteration and generic collection code
        // are an order of magnitude slower on this hot path (every poll and publish parses its target).
        var uri = uri
        let parsed = try uri.withUTF8 { bytes throws -> (String, [(name: String, value: String)]) in
            guard bytes.first == UInt8(ascii: "/") else {
                throw GatewayError.badRequest("request target must be an absolute path")
            }
            let mark = bytes.firstIndex(of: UInt8(ascii: "?")) ?? bytes.count
            let path = try RequestTarget.percentDecode(UnsafeBufferPointer(rebasing: bytes[..<mark]), plusIsSpace: false)
            var query: [(name: String, value: String)] = []
            var start = mark + 1
            while start < bytes.count {
                var end = start
                while end < bytes.count && bytes[end] != UInt8(ascii: "&") { end += 1 }
                if start < end {
                    var equals = start
                    while equals < end && bytes[equals] != UInt8(ascii: "=") { equals += 1 }
                    let name = try RequestTarget.percentDecode(UnsafeBufferPointer(rebasing: bytes[start..<equals]), plusIsSpace: true)
                    let value = equals < end
                        ? try RequestTarget.percentDecode(UnsafeBufferPointer(rebasing: bytes[(equals + 1)..<end]), plusIsSpace: true)
                        : ""
                    query.append((name, value))
                }
                start = end + 1
            }
            return (path, query)
        }
        self.path = parsed.0
        self.query = parsed.1
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
        var text = String(text)
        return try text.withUTF8 { try percentDecode($0, plusIsSpace: plusIsSpace) }
    }

    /// Percent-decodes valid UTF-8 bytes.
    static func percentDecode(_ bytes: UnsafeBufferPointer<UInt8>, plusIsSpace: Bool) throws -> String {
        var needsDecoding = false
        for byte in bytes where byte == UInt8(ascii: "%") || (plusIsSpace && byte == UInt8(ascii: "+")) {
            needsDecoding = true
            break
        }
        guard needsDecoding else {
            return String(decoding: bytes, as: UTF8.self)  // a slice of a String at ASCII boundaries: valid UTF-8
        }
        var decoded: [UInt8] = []
        decoded.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "%"):
                guard index + 2 < bytes.count, let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2]) else {
                    throw GatewayError.badRequest("malformed percent-encoding")
                }
                decoded.append(high << 4 | low)
                index += 3
                continue
            case UInt8(ascii: "+") where plusIsSpace:
                decoded.append(UInt8(ascii: " "))
            default:
                decoded.append(byte)
            }
            index += 1
        }
        guard let text = String(validating: decoded, as: UTF8.self) else {
            throw GatewayError.badRequest("percent-encoded bytes are not valid UTF-8")
        }
        return text
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
