import NIOCore

extension JSONValue {
    /// Writes this value as JSON text (strings escaped as ``JSONEncoding`` does, so the text is also safe inside a
    /// `<script>`; integral numbers up to 2^53 without a fraction).
    public func write(into buffer: inout ByteBuffer) {
        switch self {
        case .null:
            buffer.writeStaticString("null")
        case .bool(let value):
            buffer.writeString(value ? "true" : "false")
        case .number(let value):
            if value.rounded(.towardZero) == value, abs(value) <= 9_007_199_254_740_992 {
                buffer.writeString(String(Int64(value)))
            } else {
                buffer.writeString(String(value))
            }
        case .string(let text):
            JSONEncoding.writeString(text, into: &buffer)
        case .array(let items):
            buffer.writeStaticString("[")
            for (index, item) in items.enumerated() {
                if index > 0 { buffer.writeStaticString(",") }
                item.write(into: &buffer)
            }
            buffer.writeStaticString("]")
        case .object(let fields):
            buffer.writeStaticString("{")
            for (index, key) in fields.keys.sorted().enumerated() {
                if index > 0 { buffer.writeStaticString(",") }
                JSONEncoding.writeString(key, into: &buffer)
                buffer.writeStaticString(":")
                fields[key]!.write(into: &buffer)
            }
            buffer.writeStaticString("}")
        }
    }

    /// This value as JSON text.
    public var jsonText: ByteBuffer {
        var buffer = ByteBuffer()
        self.write(into: &buffer)
        return buffer
    }
}
