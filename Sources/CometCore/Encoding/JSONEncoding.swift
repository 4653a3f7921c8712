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

    /// How many bytes each byte grows by when escaped: 0 for plain bytes, 1 for `\"` `\\` `\n` `\r` `\t`, 5 for
    /// `\u00XX`; ``separatorLead`` for 0xE2, which may start U+2028/U+2029 (3 bytes that become 6).
    private static let growth: [UInt8] = (0..<256).map { byte in
        switch byte {
        case 0x22, 0x5C, 0x0A, 0x0D, 0x09: return 1
        case 0x00..<0x20, 0x26, 0x3C, 0x3E, 0x7F: return 5
        case 0xE2: return separatorLead
        default: return 0
        }
    }

    private static let separatorLead: UInt8 = 0xFF

    @inline(__always)
    private static func isSeparator(_ bytes: UnsafeRawBufferPointer, at index: Int) -> Bool {
        index + 2 < bytes.count && bytes[index + 1] == 0x80 && (bytes[index + 2] == 0xA8 || bytes[index + 2] == 0xA9)
    }

    /// Appends `"…"` with `bytes` (valid UTF-8) escaped.
    ///
    /// Two passes: the exact escaped length first, then one write into the buffer's memory (no per-escape buffer
    /// calls, no over-reservation of a buffer that history may keep).
    public static func writeString(bytes: UnsafeRawBufferPointer, into buffer: inout ByteBuffer) {
        let length = Self.quotedLength(bytes)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { output in
            Self.writeQuoted(bytes, quotedLength: length, to: output.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
    }

    /// The length of `bytes` as a quoted, escaped JSON string.
    public static func quotedLength(_ bytes: UnsafeRawBufferPointer) -> Int {
        Self.growth.withUnsafeBufferPointer { table in
            let count = bytes.count
            var length = count + 2
            var index = 0
            while index < count {
                let growth = table[Int(bytes[index])]
                if growth == Self.separatorLead {
                    if Self.isSeparator(bytes, at: index) {
                        length += 3
                        index += 2
                    }
                } else {
                    length += Int(growth)
                }
                index += 1
            }
            return length
        }
    }

    /// Writes `bytes` quoted and escaped at `out`, which has room for `quotedLength` (from ``quotedLength(_:)``)
    /// bytes; returns `quotedLength`.
    public static func writeQuoted(_ bytes: UnsafeRawBufferPointer, quotedLength length: Int,
                                   to out: UnsafeMutablePointer<UInt8>) -> Int {
        let count = bytes.count
        out[0] = UInt8(ascii: "\"")
        var written = 1
        if length == count + 2 {
            // Nothing to escape (the common case).
            if count > 0 { (out + 1).update(from: bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), count: count) }
            written += count
        } else {
            Self.growth.withUnsafeBufferPointer { table in
                var index = 0
                while index < count {
                    let byte = bytes[index]
                    let growth = table[Int(byte)]
                    if growth == 0 || (growth == Self.separatorLead && !Self.isSeparator(bytes, at: index)) {
                        out[written] = byte
                        written += 1
                        index += 1
                        continue
                    }
                    out[written] = UInt8(ascii: "\\")
                    switch byte {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"): out[written + 1] = byte
                    case UInt8(ascii: "\n"): out[written + 1] = UInt8(ascii: "n")
                    case UInt8(ascii: "\r"): out[written + 1] = UInt8(ascii: "r")
                    case UInt8(ascii: "\t"): out[written + 1] = UInt8(ascii: "t")
                    default:
                        // U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR end a JavaScript line.
                        let code: UInt16 = byte == 0xE2 ? (bytes[index + 2] == 0xA8 ? 0x2028 : 0x2029) : UInt16(byte)
                        Self.writeUnicodeEscape(code, to: out + written)
                        written += 6
                        index += byte == 0xE2 ? 3 : 1
                        continue
                    }
                    written += 2
                    index += 1
                }
            }
        }
        out[written] = UInt8(ascii: "\"")
        assert(written + 1 == length)
        return written + 1
    }

    /// Writes `\uXXXX` (6 bytes) at `out`.
    private static func writeUnicodeEscape(_ code: UInt16, to out: UnsafeMutablePointer<UInt8>) {
        let hex: StaticString = "0123456789abcdef"
        hex.withUTF8Buffer { digits in
            out[0] = UInt8(ascii: "\\")
            out[1] = UInt8(ascii: "u")
            out[2] = digits[Int(code >> 12 & 0xF)]
            out[3] = digits[Int(code >> 8 & 0xF)]
            out[4] = digits[Int(code >> 4 & 0xF)]
            out[5] = digits[Int(code & 0xF)]
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
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 20) { memory in
            var out = RawWriter(memory)
            out.appendDecimal(value)
            return out.count
        }
    }
}
