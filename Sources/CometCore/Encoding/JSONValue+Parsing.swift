extension JSONValue {
    /// Why bytes are not one JSON value.
    public struct SyntaxError: Error, Sendable, Equatable {
        /// The byte offset where parsing stopped.
        public var offset: Int
    }

    /// Parses `bytes` as exactly one JSON value (RFC 8259; surrounding whitespace allowed) nested at most `maxDepth`
    /// deep. One pass over the bytes, no Foundation: a request body is read at the cost of the values it holds.
    /// Strings are decoded from UTF-8 (an invalid sequence becomes U+FFFD); numbers become `Double` (one beyond its
    /// range, such as `1e999`, is refused); a repeated key keeps its last value.
    public init(parsing bytes: UnsafeRawBufferPointer, maxDepth: Int = 64) throws(SyntaxError) {
        var parser = JSONValueParser(bytes: bytes, maxDepth: maxDepth)
        parser.skipWhitespace()
        let value = try parser.value(depth: 0)
        parser.skipWhitespace()
        guard parser.index == bytes.count else { throw SyntaxError(offset: parser.index) }
        self = value
    }
}

struct JSONValueParser {
    let bytes: UnsafeRawBufferPointer
    let maxDepth: Int
    var index = 0

    init(bytes: UnsafeRawBufferPointer, maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    var current: UInt8? { self.index < self.bytes.count ? self.bytes[self.index] : nil }

    func fail() -> JSONValue.SyntaxError { JSONValue.SyntaxError(offset: self.index) }

    mutating func skipWhitespace() {
        while let byte = self.current, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 {
            self.index += 1
        }
    }

    mutating func literal(_ text: StaticString, _ value: JSONValue) throws(JSONValue.SyntaxError) -> JSONValue {
        let count = text.utf8CodeUnitCount
        guard self.index + count <= self.bytes.count else { throw self.fail() }
        for offset in 0..<count where self.bytes[self.index + offset] != text.utf8Start[offset] { throw self.fail() }
        self.index += count
        return value
    }

    mutating func value(depth: Int) throws(JSONValue.SyntaxError) -> JSONValue {
        guard let byte = self.current else { throw self.fail() }
        switch byte {
        case UInt8(ascii: "{"):
            guard depth < self.maxDepth else { throw self.fail() }
            self.index += 1
            var fields: [String: JSONValue] = [:]
            self.skipWhitespace()
            if self.current == UInt8(ascii: "}") {
                self.index += 1
                return .object(fields)
            }
            while true {
                guard self.current == UInt8(ascii: "\"") else { throw self.fail() }
                let key = try self.string()
                self.skipWhitespace()
                guard self.current == UInt8(ascii: ":") else { throw self.fail() }
                self.index += 1
                self.skipWhitespace()
                fields[key] = try self.value(depth: depth + 1)
                self.skipWhitespace()
                switch self.current {
                case UInt8(ascii: ","):
                    self.index += 1
                    self.skipWhitespace()
                case UInt8(ascii: "}"):
                    self.index += 1
                    return .object(fields)
                default:
                    throw self.fail()
                }
            }
        case UInt8(ascii: "["):
            guard depth < self.maxDepth else { throw self.fail() }
            self.index += 1
            var items: [JSONValue] = []
            self.skipWhitespace()
            if self.current == UInt8(ascii: "]") {
                self.index += 1
                return .array(items)
            }
            while true {
                items.append(try self.value(depth: depth + 1))
                self.skipWhitespace()
                switch self.current {
                case UInt8(ascii: ","):
                    self.index += 1
                    self.skipWhitespace()
                case UInt8(ascii: "]"):
                    self.index += 1
                    return .array(items)
                default:
                    throw self.fail()
                }
            }
        case UInt8(ascii: "\""):
            return .string(try self.string())
        case UInt8(ascii: "t"):
            return try self.literal("true", .bool(true))
        case UInt8(ascii: "f"):
            return try self.literal("false", .bool(false))
        case UInt8(ascii: "n"):
            return try self.literal("null", .null)
        default:
            return .number(try self.number())
        }
    }

    /// A string starting at the current `"`.
    mutating func string() throws(JSONValue.SyntaxError) -> String {
        self.index += 1
        let start = self.index
        // The common case: no escapes, the bytes are the string.
        while let byte = self.current, byte != UInt8(ascii: "\""), byte != UInt8(ascii: "\\"), byte >= 0x20 {
            self.index += 1
        }
        guard let stop = self.current else { throw self.fail() }
        if stop == UInt8(ascii: "\"") {
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: self.bytes[start..<self.index]), as: UTF8.self)
            self.index += 1
            return text
        }
        var utf8 = Array(self.bytes[start..<self.index])
        while let byte = self.current {
            self.index += 1
            switch byte {
            case UInt8(ascii: "\""):
                return String(decoding: utf8, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard let escaped = self.current else { throw self.fail() }
                self.index += 1
                switch escaped {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(escaped)
                case UInt8(ascii: "b"): utf8.append(0x08)
                case UInt8(ascii: "f"): utf8.append(0x0C)
                case UInt8(ascii: "n"): utf8.append(0x0A)
                case UInt8(ascii: "r"): utf8.append(0x0D)
                case UInt8(ascii: "t"): utf8.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try self.hex4()
                    if (0xD800..<0xDC00).contains(scalar), self.index + 6 <= self.bytes.count,
                       self.bytes[self.index] == UInt8(ascii: "\\"), self.bytes[self.index + 1] == UInt8(ascii: "u") {
                        let mark = self.index
                        self.index += 2
                        let low = try self.hex4()
                        if (0xDC00..<0xE000).contains(low) {
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            self.index = mark  // a lone high surrogate; the next escape stands alone
                        }
                    }
                    let character = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                    utf8.append(contentsOf: String(character).utf8)
                default:
                    throw self.fail()
                }
            case 0x00..<0x20:
                throw self.fail()
            default:
                utf8.append(byte)
            }
        }
        throw self.fail()
    }

    mutating func hex4() throws(JSONValue.SyntaxError) -> UInt32 {
        guard self.index + 4 <= self.bytes.count else { throw self.fail() }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = self.bytes[self.index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw self.fail()
            }
            value = value << 4 | UInt32(digit)
            self.index += 1
        }
        return value
    }

    mutating func number() throws(JSONValue.SyntaxError) -> Double {
        let start = self.index
        func digits(_ parser: inout JSONValueParser) -> Bool {
            guard let byte = parser.current, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return false }
            while let byte = parser.current, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") { parser.index += 1 }
            return true
        }
        if self.current == UInt8(ascii: "-") { self.index += 1 }
        if self.current == UInt8(ascii: "0") {
            self.index += 1
        } else if !digits(&self) {
            throw self.fail()
        }
        if self.current == UInt8(ascii: ".") {
            self.index += 1
            guard digits(&self) else { throw self.fail() }
        }
        if self.current == UInt8(ascii: "e") || self.current == UInt8(ascii: "E") {
            self.index += 1
            if self.current == UInt8(ascii: "+") || self.current == UInt8(ascii: "-") { self.index += 1 }
            guard digits(&self) else { throw self.fail() }
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: self.bytes[start..<self.index]), as: UTF8.self)
        // A number too large for a Double (1e999) has no JSON form to write back: refused.
        guard let value = Double(text), value.isFinite else { throw self.fail() }
        return value
    }
}
