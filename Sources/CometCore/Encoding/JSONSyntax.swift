/// Checks that bytes are one JSON value (RFC 8259; scalars included, surrounding whitespace allowed) without
/// building it: no allocation, one pass. Used to decide once per message whether a payload can be embedded as JSON.
public enum JSONSyntax {
    /// Whether `bytes` are exactly one JSON value nested at most `maxDepth` deep.
    public static func isValid(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = 64) -> Bool {
        var scanner = Scanner(bytes: bytes, maxDepth: maxDepth)
        scanner.skipWhitespace()
        guard scanner.value(depth: 0) else { return false }
        scanner.skipWhitespace()
        return scanner.index == bytes.count
    }

    private struct Scanner {
        let bytes: UnsafeRawBufferPointer
        let maxDepth: Int
        var index = 0

        init(bytes: UnsafeRawBufferPointer, maxDepth: Int) {
            self.bytes = bytes
            self.maxDepth = maxDepth
        }

        var current: UInt8? { self.index < self.bytes.count ? self.bytes[self.index] : nil }

        mutating func skipWhitespace() {
            while let byte = self.current, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 {
                self.index += 1
            }
        }

        mutating func literal(_ text: StaticString) -> Bool {
            let count = text.utf8CodeUnitCount
            guard self.index + count <= self.bytes.count else { return false }
            for offset in 0..<count where self.bytes[self.index + offset] != text.utf8Start[offset] { return false }
            self.index += count
            return true
        }

        mutating func value(depth: Int) -> Bool {
            guard let byte = self.current else { return false }
            switch byte {
            case UInt8(ascii: "{"):
                guard depth < self.maxDepth else { return false }
                self.index += 1
                self.skipWhitespace()
                if self.current == UInt8(ascii: "}") {
                    self.index += 1
                    return true
                }
                while true {
                    guard self.current == UInt8(ascii: "\""), self.string() else { return false }
                    self.skipWhitespace()
                    guard self.current == UInt8(ascii: ":") else { return false }
                    self.index += 1
                    self.skipWhitespace()
                    guard self.value(depth: depth + 1) else { return false }
                    self.skipWhitespace()
                    switch self.current {
                    case UInt8(ascii: ","):
                        self.index += 1
                        self.skipWhitespace()
                    case UInt8(ascii: "}"):
                        self.index += 1
                        return true
                    default:
                        return false
                    }
                }
            case UInt8(ascii: "["):
                guard depth < self.maxDepth else { return false }
                self.index += 1
                self.skipWhitespace()
                if self.current == UInt8(ascii: "]") {
                    self.index += 1
                    return true
                }
                while true {
                    guard self.value(depth: depth + 1) else { return false }
                    self.skipWhitespace()
                    switch self.current {
                    case UInt8(ascii: ","):
                        self.index += 1
                        self.skipWhitespace()
                    case UInt8(ascii: "]"):
                        self.index += 1
                        return true
                    default:
                        return false
                    }
                }
            case UInt8(ascii: "\""):
                return self.string()
            case UInt8(ascii: "t"):
                return self.literal("true")
            case UInt8(ascii: "f"):
                return self.literal("false")
            case UInt8(ascii: "n"):
                return self.literal("null")
            default:
                return self.number()
            }
        }

        /// A string starting at the current `"` (its UTF-8 was validated by whoever made the payload).
        mutating func string() -> Bool {
            self.index += 1
            while let byte = self.current {
                self.index += 1
                switch byte {
                case UInt8(ascii: "\""):
                    return true
                case UInt8(ascii: "\\"):
                    guard let escaped = self.current else { return false }
                    self.index += 1
                    switch escaped {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                         UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        continue
                    case UInt8(ascii: "u"):
                        for _ in 0..<4 {
                            guard let hex = self.current, hex.isHexDigit else { return false }
                            self.index += 1
                        }
                    default:
                        return false
                    }
                case 0x00..<0x20:
                    return false
                default:
                    continue
                }
            }
            return false
        }

        mutating func number() -> Bool {
            if self.current == UInt8(ascii: "-") { self.index += 1 }
            guard let first = self.current, first.isDigit else { return false }
            self.index += 1
            if first != UInt8(ascii: "0") {
                while let byte = self.current, byte.isDigit { self.index += 1 }
            }
            if self.current == UInt8(ascii: ".") {
                self.index += 1
                guard let byte = self.current, byte.isDigit else { return false }
                while let byte = self.current, byte.isDigit { self.index += 1 }
            }
            if self.current == UInt8(ascii: "e") || self.current == UInt8(ascii: "E") {
                self.index += 1
                if self.current == UInt8(ascii: "+") || self.current == UInt8(ascii: "-") { self.index += 1 }
                guard let byte = self.current, byte.isDigit else { return false }
                while let byte = self.current, byte.isDigit { self.index += 1 }
            }
            return true
        }
    }
}

extension UInt8 {
    fileprivate var isDigit: Bool { self >= UInt8(ascii: "0") && self <= UInt8(ascii: "9") }
    fileprivate var isHexDigit: Bool {
        self.isDigit || (self >= UInt8(ascii: "a") && self <= UInt8(ascii: "f")) || (self >= UInt8(ascii: "A") && self <= UInt8(ascii: "F"))
    }
}
