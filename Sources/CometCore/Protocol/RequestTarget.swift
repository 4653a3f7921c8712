/// The path and query of an origin-form request target (`/path?query`), percent-decoded.
///
/// The whole target is checked when it is parsed (every percent escape, and UTF-8 once decoded), but query values are
/// decoded only when asked for (``queryValue(_:)``): a poll reads two or three parameters of its query, and building
/// every pair as strings cost more than the rest of its routing.
public struct RequestTarget: Sendable, Equatable {
    /// The percent-decoded path.
    public var path: String
    /// The query as sent (after `?`, still encoded; a slice of the target, not a copy); empty when there is none.
    private var rawQuery: Substring

    /// The query parameters in order, names and values percent-decoded (`+` is a space). Empty pairs (`&&`) are
    /// skipped; a pair without `=` has an empty value.
    public var query: [(name: String, value: String)] {
        var pairs: [(name: String, value: String)] = []
        var raw = self.rawQuery
        raw.withUTF8 { bytes in
            Self.forEachPair(bytes) { name, value in
                // The query was checked when the target was parsed: decoding cannot fail.
                pairs.append(((try? Self.percentDecode(name, plusIsSpace: true)) ?? "",
                              (try? Self.percentDecode(value, plusIsSpace: true)) ?? ""))
                return true
            }
        }
        return pairs
    }

    /// Parses a request target.
    /// - Throws: ``GatewayError`` (400) for a target that is not origin-form, a bad percent escape, or bytes that are
    ///   not valid UTF-8 once decoded.
    public init(parsing uri: String) throws {
        // Byte-level scanning of the contiguous UTF-8: Character (grapheme) iteration and generic collection code
        // are an order of magnitude slower on this hot path (every poll and publish parses its target).
        var uri = uri
        let parsed = try uri.withUTF8 { bytes throws -> (path: String, queryStart: Int?) in
            guard bytes.first == UInt8(ascii: "/") else {
                throw GatewayError.badRequest("request target must be an absolute path")
            }
            let mark = bytes.firstIndex(of: UInt8(ascii: "?")) ?? bytes.count
            let path = try RequestTarget.percentDecode(UnsafeBufferPointer(rebasing: bytes[..<mark]), plusIsSpace: false)
            guard mark + 1 < bytes.count else { return (path, nil) }
            let query = UnsafeBufferPointer(rebasing: bytes[(mark + 1)...])
            // Without an escape every pair is plain text (the parser admits visible ASCII only); with one, decode every
            // pair once now, so that a bad escape anywhere is refused whatever the routes read.
            if query.contains(UInt8(ascii: "%")) {
                var failure: (any Error)?
                Self.forEachPair(query) { name, value in
                    do {
                        _ = try Self.percentDecode(name, plusIsSpace: true)
                        _ = try Self.percentDecode(value, plusIsSpace: true)
                        return true
                    } catch {
                        failure = error
                        return false
                    }
                }
                if let failure { throw failure }
            }
            return (path, mark + 1)
        }
        self.path = parsed.path
        if let start = parsed.queryStart {
            self.rawQuery = Substring(uri.utf8[uri.utf8.index(uri.utf8.startIndex, offsetBy: start)...])
        } else {
            self.rawQuery = ""
        }
    }

    /// The value of the first query parameter named `name`.
    public func queryValue(_ name: String) -> String? {
        self.queryValues(name).0.map(String.init)
    }

    /// The values of the first query parameters named `first`, `second` and `third` (each as ``queryValue(_:)`` finds
    /// it), found in one pass over the query: a subscribe request reads three. A value without escapes is a slice of
    /// the target, not a copy.
    public func queryValues(_ first: String, _ second: String? = nil, _ third: String? = nil) -> (Substring?, Substring?, Substring?) {
        guard !self.rawQuery.isEmpty else { return (nil, nil, nil) }
        // Found values are kept in plain locals (no tuple passed through the generic `withUTF8`, whose copies cost
        // more than the scan).
        var value0: Substring?
        var value1: Substring?
        var value2: Substring?
        var raw = self.rawQuery
        raw.withUTF8 { bytes in
            var wanted = 1 + (second == nil ? 0 : 1) + (third == nil ? 0 : 1)
            Self.forEachPair(bytes) { rawName, rawValue in
                let decodedName: String?
                if rawName.contains(UInt8(ascii: "%")) || rawName.contains(UInt8(ascii: "+")) {
                    decodedName = (try? Self.percentDecode(rawName, plusIsSpace: true)) ?? ""
                } else {
                    decodedName = nil
                }
                func matches(_ name: String) -> Bool {
                    if let decodedName { return decodedName == name }
                    return name.utf8.elementsEqual(rawName)
                }
                func value() -> Substring {
                    if !rawValue.contains(UInt8(ascii: "%")) && !rawValue.contains(UInt8(ascii: "+")) {
                        // Plain text: the same bytes, sliced out of the query.
                        let start = rawValue.baseAddress.map { $0 - bytes.baseAddress! } ?? 0
                        let utf8 = self.rawQuery.utf8
                        let from = utf8.index(utf8.startIndex, offsetBy: start)
                        return Substring(utf8[from..<utf8.index(from, offsetBy: rawValue.count)])
                    }
                    return Substring((try? Self.percentDecode(rawValue, plusIsSpace: true)) ?? "")
                }
                if value0 == nil, matches(first) {
                    value0 = value()
                    wanted -= 1
                }
                if value1 == nil, let second, matches(second) {
                    value1 = value()
                    wanted -= 1
                }
                if value2 == nil, let third, matches(third) {
                    value2 = value()
                    wanted -= 1
                }
                return wanted > 0
            }
        }
        return (value0, value1, value2)
    }

    public static func == (lhs: RequestTarget, rhs: RequestTarget) -> Bool {
        lhs.path == rhs.path && lhs.query.elementsEqual(rhs.query, by: { $0 == $1 })
    }

    /// Calls `body` with each non-empty `name[=value]` pair of a raw query, in order, while it returns `true`.
    private static func forEachPair(
        _ bytes: UnsafeBufferPointer<UInt8>,
        _ body: (_ name: UnsafeBufferPointer<UInt8>, _ value: UnsafeBufferPointer<UInt8>) -> Bool
    ) {
        var start = 0
        while start < bytes.count {
            var end = start
            while end < bytes.count && bytes[end] != UInt8(ascii: "&") { end += 1 }
            if start < end {
                var equals = start
                while equals < end && bytes[equals] != UInt8(ascii: "=") { equals += 1 }
                let name = UnsafeBufferPointer(rebasing: bytes[start..<equals])
                let value = equals < end ? UnsafeBufferPointer(rebasing: bytes[(equals + 1)..<end])
                                         : UnsafeBufferPointer(rebasing: bytes[end..<end])
                if !body(name, value) { return }
            }
            start = end + 1
        }
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
