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

    /// Appends `"…"` with `bytes` (valid UTF-8) escaped.
    public static func writeString(bytes: UnsafeRawBufferPointer, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "\""))
        var runStart = 0
        var index = 0
        let count = bytes.count
        while index < count {
            let byte = bytes[index]
            var escape: StaticString? = nil
            var unicodeEscape: UInt16? = nil
            var skip = 1
            switch byte {
            case UInt8(ascii: "\""): escape = "\\\""
            case UInt8(ascii: "\\"): escape = "\\\\"
            case UInt8(ascii: "\n"): escape = "\\n"
            case UInt8(ascii: "\r"): escape = "\\r"
            case UInt8(ascii: "\t"): escape = "\\t"
            case UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "&"), 0x00..<0x20, 0x7F:
                unicodeEscape = UInt16(byte)
            case 0xE2 where index + 2 < count && bytes[index + 1] == 0x80
                && (bytes[index + 2] == 0xA8 || bytes[index + 2] == 0xA9):
                // U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR end a JavaScript line.
                unicodeEscape = bytes[index + 2] == 0xA8 ? 0x2028 : 0x2029
                skip = 3
            default:
                index += 1
                continue
            }
            if runStart < index {
                buffer.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[runStart..<index]))
            }
            if let escape {
                buffer.writeStaticString(escape)
            } else if let code = unicodeEscape {
                writeUnicodeEscape(code, into: &buffer)
            }
            index += skip
            runStart = index
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
