/// A header value as a list of elements with parameters, as GRIP's headers use them (RFC 9110 lists and
/// parameters): `name; key=value; key="quoted, value", other; key=value`.
///
/// Commas and semicolons inside a quoted string belong to it; `\` escapes the next character in a quoted string.
/// Names and values are trimmed of spaces and tabs. Parsing never fails: what it reads is what the caller validates.
public struct HeaderElement: Sendable, Equatable {
    /// The element's first part (`name` above).
    public var value: String
    /// The parameters after it, in order; a parameter without `=` has an empty value.
    public var parameters: [(key: String, value: String)]

    /// The first parameter named `key` (case-insensitive).
    public func parameter(_ key: String) -> String? {
        self.parameters.first { $0.key.lowercased() == key }?.value
    }

    public static func == (lhs: HeaderElement, rhs: HeaderElement) -> Bool {
        lhs.value == rhs.value && lhs.parameters.map(\.key) == rhs.parameters.map(\.key)
            && lhs.parameters.map(\.value) == rhs.parameters.map(\.value)
    }

    /// The elements of one or more header lines (lines are elements of one list, in order).
    public static func parseList(_ lines: [String]) -> [HeaderElement] {
        lines.flatMap { Self.split($0, separator: UInt8(ascii: ",")) }.compactMap { part in
            let pieces = Self.split(part, separator: UInt8(ascii: ";"))
            guard let first = pieces.first, !(pieces.count == 1 && first.isEmpty) else { return nil }
            return HeaderElement(value: Self.unquote(first), parameters: pieces.dropFirst().map(Self.parameter))
        }
    }

    /// One element (a header whose value is never a list, such as `Grip-Keep-Alive`, whose data may hold commas).
    public static func parseSingle(_ line: String) -> HeaderElement? {
        let pieces = Self.split(line, separator: UInt8(ascii: ";"))
        guard let first = pieces.first else { return nil }
        return HeaderElement(value: Self.unquote(first), parameters: pieces.dropFirst().map(Self.parameter))
    }

    private static func parameter(_ text: String) -> (key: String, value: String) {
        guard let equals = text.utf8.firstIndex(of: UInt8(ascii: "=")) else { return (Self.trim(text), "") }
        let key = String(text[..<equals])
        let value = String(text[text.utf8.index(after: equals)...])
        return (Self.trim(key), Self.unquote(value))
    }

    /// Splits at `separator` outside quoted strings; each piece trimmed.
    private static func split(_ text: String, separator: UInt8) -> [String] {
        var pieces: [String] = []
        var current: [UInt8] = []
        var quoted = false
        var escaped = false
        for byte in text.utf8 {
            if escaped {
                escaped = false
            } else if quoted && byte == UInt8(ascii: "\\") {
                escaped = true
            } else if byte == UInt8(ascii: "\"") {
                quoted.toggle()
            } else if !quoted && byte == separator {
                pieces.append(Self.trim(String(decoding: current, as: UTF8.self)))
                current.removeAll(keepingCapacity: true)
                continue
            }
            current.append(byte)
        }
        pieces.append(Self.trim(String(decoding: current, as: UTF8.self)))
        return pieces
    }

    /// A trimmed value without its quotes and escapes, if quoted.
    private static func unquote(_ text: String) -> String {
        let trimmed = Self.trim(text)
        let bytes = Array(trimmed.utf8)
        guard bytes.count >= 2, bytes.first == UInt8(ascii: "\""), bytes.last == UInt8(ascii: "\"") else { return trimmed }
        var out: [UInt8] = []
        var escaped = false
        for byte in bytes[1..<(bytes.count - 1)] {
            if !escaped && byte == UInt8(ascii: "\\") {
                escaped = true
                continue
            }
            escaped = false
            out.append(byte)
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func trim(_ text: String) -> String {
        let bytes = text.utf8
        guard let start = bytes.firstIndex(where: { $0 != 0x20 && $0 != 0x09 }) else { return "" }
        let end = bytes.lastIndex(where: { $0 != 0x20 && $0 != 0x09 })!
        return String(text[start...end])
    }
}
