import NIOCore

/// Writes JSON string literals into a `ByteBuffer`.
///
/// The output is safe to embed in HTML `<script>` and JavaScript as well as JSON: besides the escapes JSON
/// requires, `<`, `>`, `&`, U+2028 and U+2029 are escaped as `\uXXXX`.
public enum JSONEncoding {
    /// Appends `"…"` with the bytes of `text` (valid UTF-8) escaped.
    public static func writeString(_ text: ByteBuffer, into buffer: inout ByteBuffer) {
        text.withUnsafeReadableBytes { writeString(bytes: $0, into: &buffer) }
    }

    /// Appends `"…"` with `text` escaped.
    public static func writeString(_ text: String, into buffer: inout ByteBuffer) {
        var text = text
        text.withUTF8 { writeString(bytes: UnsafeRawBufferPointer($0), into: &buffer) }
    }

    /// Bytes that need care inside a JSON string: 1 for bytes to escape, 2 for 0xE2 (which may start U+2028/9).
    private static let escapeClass: [UInt8] = (0..<256).map { byte in
        switch byte {
        case 0x00..<0x20, 0x22, 0x26, 0x3C, 0x3E, 0x5C, 0x7F: return 1
        case 0xE2: return 2
        default: return 0
        }
    }

    /// Appends `"…"` with `bytes` (valid UTF-8) escaped.
    public static func writeString(bytes: UnsafeRawBufferPointer, into buffer: inout ByteBuffer) {
        buffer.reserveCapacity(minimumWritableBytes: bytes.count + 2)
        buffer.writeInteger(UInt8(ascii: "\""))
        let count = bytes.count
        var runStart = 0
        var index = 0
        Self.escapeClass.withUnsafeBufferPointer { table in
            while index < count {
                // Skip the run of bytes that need nothing (the common case: plain text).
                while index < count && table[Int(bytes[index])] == 0 { index += 1 }
                guard index < count else { break }
                let byte = bytes[index]
                var skip = 1
                let isSeparator = byte == 0xE2 && index + 2 < count && bytes[index + 1] == 0x80
                    && (bytes[index + 2] == 0xA8 || bytes[index + 2] == 0xA9)
                if byte == 0xE2 && !isSeparator {
                    index += 1  // an ordinary three-byte character
                    continue
                }
                if runStart < index {
                    buffer.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[runStart..<index]))
                }
                switch byte {
                case UInt8(ascii: "\""): buffer.writeStaticString("\\\"")
                case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
                case UInt8(ascii: "\n"): buffer.writeStaticString("\\n")
                case UInt8(ascii: "\r"): buffer.writeStaticString("\\r")
                case UInt8(ascii: "\t"): buffer.writeStaticString("\\t")
                case 0xE2:
                    // U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR end a JavaScript line.
                    writeUnicodeEscape(bytes[index + 2] == 0xA8 ? 0x2028 : 0x2029, into: &buffer)
                    skip = 3
                default:
                    writeUnicodeEscape(UInt16(byte), into: &buffer)
                }
                index += skip
                runStart = index
            }
        }
        if runStart < count {
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[runStart..<count]))
        }
        buffer.writeInteger(UInt8(ascii: "\""))
    }

    private static func writeUnicodeEscape(_ code: UInt16, into buffer: inout ByteBuffer) {
        let hex: StaticString = "0123456789abcdef"
        buffer.writeStaticString("\\u")
        hex.withUTF8Buffer { digits in
            buffer.writeInteger(digits[Int(code >> 12 & 0xF)])
            buffer.writeInteger(digits[Int(code >> 8 & 0xF)])
            buffer.writeInteger(digits[Int(code >> 4 & 0xF)])
            buffer.writeInteger(digits[Int(code & 0xF)])
        }
    }

    /// Appends an unsigned integer as a quoted JSON string (`"123"`).
    public static func writeQuotedInteger(_ value: UInt64, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "\""))
        writeDecimal(value, into: &buffer)
        buffer.writeInteger(UInt8(ascii: "\""))
    }

    /// Appends an unsigned integer in decimal.
    public static func writeDecimal(_ value: UInt64, into buffer: inout ByteBuffer) {
        if value == 0 {
            buffer.writeInteger(UInt8(ascii: "0"))
            return
        }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes of scratch: enough for 20 digits
        var length = 0
        withUnsafeMutableBytes(of: &digits) { scratch in
            var rest = value
            var position = scratch.count
            while rest > 0 {
                position -= 1
                scratch[position] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            }
            length = scratch.count - position
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: scratch[position...]))
        }
        _ = length
    }
}
